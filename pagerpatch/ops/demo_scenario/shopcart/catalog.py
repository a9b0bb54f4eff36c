"""The product catalog and the stock levels a fresh warehouse starts with."""

from __future__ import annotations

from shopcart.models import Cart, Product

PRODUCTS: dict[str, Product] = {
    p.sku: p
    for p in (
        Product("MUG-001", "Enamel camp mug", 1450, weight_grams=350),
        Product("TEE-014", "Organic cotton tee", 2400, weight_grams=200),
        Product("BOOK-207", "Field guide to mushrooms", 3199, taxable=False, weight_grams=900),
        Product("LAMP-330", "Rechargeable lantern", 5800, weight_grams=1200),
        Product("SOCK-002", "Merino hiking socks", 1899, weight_grams=120),
    )
}

INITIAL_STOCK: dict[str, int] = {
    "MUG-001": 120,
    "TEE-014": 80,
    "BOOK-207": 15,
    "LAMP-330": 6,
    "SOCK-002": 200,
}


def product(sku: str) -> Product:
    """Look a product up by SKU; unknown SKUs are a client error."""
    try:
        return PRODUCTS[sku]
    except KeyError:
        raise LookupError(f"unknown SKU {sku!r}") from None


def sample_cart(customer_id: str = "cus_4821", region: str = "CA") -> Cart:
    """A typical cart (used by smoke checks and the runbook)."""
    cart = Cart(customer_id=customer_id, region=region)
    cart.add(product("MUG-001"), 2)
    cart.add(product("BOOK-207"))
    return cart
