from datetime import date

from shopcart.api import quote
from shopcart.models import Cart, Product
from shopcart.shipping import FLAT_RATE_CENTS, shipping_fee

LAMP = Product("LAMP-330", "Rechargeable lantern", 5800, weight_grams=1200)
SOCKS = Product("SOCK-002", "Merino hiking socks", 1899, weight_grams=120)
TENT = Product("TENT-009", "Two-person tent", 5500, weight_grams=800)


def test_flat_rate_below_threshold() -> None:
    cart = Cart("cus_1", "CA")
    cart.add(SOCKS)
    assert shipping_fee(cart, cart.subtotal_cents) == FLAT_RATE_CENTS


def test_heavy_parcels_pay_per_started_kilogram() -> None:
    cart = Cart("cus_1", "CA")
    cart.add(LAMP, 2)  # 2.4 kg: 1 kg included, 1.4 kg extra -> two started kilograms
    assert shipping_fee(cart, 4000) == FLAT_RATE_CENTS + 2 * 150


def test_free_shipping_threshold_applies_after_the_coupon() -> None:
    cart = Cart("cus_1", "OR")  # no sales tax in Oregon
    cart.add(TENT)
    assert quote(cart, today=date(2024, 6, 10)).shipping_cents == 0
    discounted = quote(cart, "WELCOME10", today=date(2024, 6, 10))  # 55.00 - 5.50 < 50.00
    assert discounted.shipping_cents == FLAT_RATE_CENTS
    assert discounted.total_cents == 5500 - 550 + FLAT_RATE_CENTS
