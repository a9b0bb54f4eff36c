import pytest

from shopcart.models import Cart, Product, Quote, format_cents

MUG = Product("MUG-001", "Enamel camp mug", 1450, weight_grams=350)
BOOK = Product("BOOK-207", "Field guide", 3199, taxable=False, weight_grams=900)


def test_adding_the_same_product_twice_merges_the_lines() -> None:
    cart = Cart("cus_1", "CA")
    cart.add(MUG)
    cart.add(MUG, 2)
    assert len(cart.items) == 1
    assert cart.items[0].quantity == 3
    assert cart.subtotal_cents == 3 * 1450


def test_remove_drops_the_line_and_updates_totals() -> None:
    cart = Cart("cus_1", "CA")
    cart.add(MUG)
    cart.add(BOOK)
    cart.remove("MUG-001")
    assert [line.product.sku for line in cart.items] == ["BOOK-207"]
    assert cart.weight_grams == 900


def test_quantity_and_price_are_validated() -> None:
    with pytest.raises(ValueError):
        Cart("cus_1", "CA").add(MUG, 0)
    with pytest.raises(ValueError):
        Product("BAD-1", "Broken", -1)


def test_quote_total_and_receipt_formatting() -> None:
    quote = Quote(subtotal_cents=10_000, discount_cents=1_000, shipping_cents=599, tax_cents=653)
    assert quote.total_cents == 10_252
    assert format_cents(quote.total_cents) == "$102.52"
    assert format_cents(123_456_789) == "$1,234,567.89"
    assert format_cents(-5) == "-$0.05"
