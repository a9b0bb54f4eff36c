from datetime import date

import pytest

from shopcart.api import EmptyCartError, checkout
from shopcart.catalog import INITIAL_STOCK, product, sample_cart
from shopcart.inventory import Inventory, OutOfStockError
from shopcart.models import Cart
from shopcart.pricing import InvalidCouponError

TODAY = date(2024, 6, 10)


def test_checkout_prices_and_reserves_the_cart() -> None:
    inventory = Inventory(INITIAL_STOCK)
    order = checkout(sample_cart(), "WELCOME10", inventory=inventory, today=TODAY)
    assert order.order_id.startswith("ord_")
    assert order.quote.coupon_code == "WELCOME10"
    assert order.quote.total_cents > 0
    assert inventory.available("MUG-001") == INITIAL_STOCK["MUG-001"] - 2


def test_checkout_rejects_an_empty_cart() -> None:
    with pytest.raises(EmptyCartError):
        checkout(Cart("cus_1", "CA"), inventory=Inventory(), today=TODAY)


def test_checkout_with_unknown_coupon_reserves_nothing() -> None:
    inventory = Inventory(INITIAL_STOCK)
    with pytest.raises(InvalidCouponError):
        checkout(sample_cart(), "SUMMER24", inventory=inventory, today=TODAY)
    assert inventory.available("MUG-001") == INITIAL_STOCK["MUG-001"]


def test_checkout_out_of_stock() -> None:
    cart = Cart("cus_1", "NY")
    cart.add(product("LAMP-330"), 7)
    with pytest.raises(OutOfStockError):
        checkout(cart, inventory=Inventory(INITIAL_STOCK), today=TODAY)


def test_unknown_sku_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        product("NOPE-000")
