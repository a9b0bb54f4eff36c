"""Entry points the HTTP layer calls: `quote` (GET /cart/quote) and `checkout` (POST /checkout)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import date

from shopcart.catalog import INITIAL_STOCK
from shopcart.inventory import Inventory, Reservation
from shopcart.models import Cart, Quote
from shopcart.pricing import price_cart
from shopcart.shipping import shipping_fee

_order_numbers = itertools.count(100_001)
_warehouse = Inventory(INITIAL_STOCK)


class EmptyCartError(Exception):
    """Checkout was called on an empty cart; the HTTP layer answers 400."""


@dataclass(frozen=True)
class Order:
    """A placed order: what was charged and which units are held for it."""

    order_id: str
    customer_id: str
    quote: Quote
    reservation: Reservation


def quote(cart: Cart, coupon_code: str | None = None, *, today: date | None = None) -> Quote:
    """Full price of `cart`, shipping included, without reserving anything."""
    priced = price_cart(cart, coupon_code=coupon_code, today=today or date.today())
    shipping = shipping_fee(cart, priced.subtotal_cents - priced.discount_cents)
    return replace(priced, shipping_cents=shipping)


def checkout(
    cart: Cart,
    coupon_code: str | None = None,
    *,
    inventory: Inventory | None = None,
    today: date | None = None,
) -> Order:
    """Price `cart`, hold its stock and return the order to charge."""
    if cart.is_empty:
        raise EmptyCartError(cart.customer_id)
    priced = quote(cart, coupon_code, today=today)
    reservation = (inventory if inventory is not None else _warehouse).reserve(cart)
    order_id = f"ord_{next(_order_numbers)}"
    return Order(order_id=order_id, customer_id=cart.customer_id, quote=priced, reservation=reservation)
