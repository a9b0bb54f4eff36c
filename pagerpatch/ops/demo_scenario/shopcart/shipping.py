"""Shipping fees: a flat rate plus a per-kilogram surcharge, free above a threshold."""

from __future__ import annotations

from shopcart.models import Cart

FREE_SHIPPING_THRESHOLD_CENTS = 5000
FLAT_RATE_CENTS = 599
PER_EXTRA_KG_CENTS = 150
INCLUDED_GRAMS = 1000


def shipping_fee(cart: Cart, discounted_subtotal_cents: int) -> int:
    """Fee for shipping `cart`; the free-shipping threshold applies after coupons."""
    if cart.is_empty or discounted_subtotal_cents >= FREE_SHIPPING_THRESHOLD_CENTS:
        return 0
    extra_grams = max(0, cart.weight_grams - INCLUDED_GRAMS)
    extra_kg = -(-extra_grams // 1000)  # started kilograms count as whole ones
    return FLAT_RATE_CENTS + extra_kg * PER_EXTRA_KG_CENTS
