from datetime import date

import pytest

from shopcart.models import Cart, Product
from shopcart.pricing import InvalidCouponError, PricingError, find_coupon, price_cart, tax_for

TODAY = date(2024, 6, 10)
LAMP = Product("LAMP-330", "Rechargeable lantern", 5800)
BOOK = Product("BOOK-207", "Field guide", 3199, taxable=False)


def cart_with(*products: Product, region: str = "CA") -> Cart:
    cart = Cart("cus_1", region)
    for product in products:
        cart.add(product)
    return cart


def test_price_without_coupon_is_subtotal_plus_tax() -> None:
    quote = price_cart(cart_with(LAMP), today=TODAY)
    assert quote.subtotal_cents == 5800
    assert quote.discount_cents == 0
    assert quote.tax_cents == 421  # 7.25% of 58.00 = 4.205, rounded half up
    assert quote.coupon_code is None


def test_percent_coupon_is_case_and_space_insensitive() -> None:
    quote = price_cart(cart_with(LAMP), coupon_code="  welcome10 ", today=TODAY)
    assert quote.discount_cents == 580
    assert quote.coupon_code == "WELCOME10"


def test_fixed_coupon_respects_minimum_subtotal() -> None:
    small = Product("SOCK-002", "Socks", 1899)
    assert price_cart(cart_with(small), coupon_code="SPRING5", today=TODAY).discount_cents == 0
    assert price_cart(cart_with(LAMP), coupon_code="SPRING5", today=TODAY).discount_cents == 500


def test_expired_coupon_is_rejected() -> None:
    with pytest.raises(InvalidCouponError):
        find_coupon("SPRING5", today=date(2024, 7, 1))


def test_unknown_coupon_is_rejected() -> None:
    with pytest.raises(InvalidCouponError) as excinfo:
        price_cart(cart_with(LAMP), coupon_code="SUMMER24", today=TODAY)
    assert excinfo.value.code == "SUMMER24"


def test_tax_exempt_goods_and_discount_share() -> None:
    quote = price_cart(cart_with(LAMP, BOOK), coupon_code="WELCOME10", today=TODAY)
    assert quote.discount_cents == 899
    # Only the lamp is taxable: 5800 minus its share of the discount (899 * 5800 // 8999 = 579).
    assert quote.tax_cents == tax_for(5800 - 579, "CA") == 379


def test_unknown_region_cannot_be_priced() -> None:
    with pytest.raises(PricingError):
        price_cart(cart_with(LAMP, region="ZZ"), today=TODAY)
