"""Prices a cart: coupon discounts, then sales tax on what is left of the taxable goods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shopcart.models import Cart, Quote


class PricingError(Exception):
    """The cart cannot be priced as asked; the HTTP layer answers 422."""


class InvalidCouponError(PricingError):
    """The coupon code is unknown, expired, or not applicable."""

    def __init__(self, code: str) -> None:
        super().__init__(f"coupon {code!r} is not valid")
        self.code = code


@dataclass(frozen=True)
class Coupon:
    """A promotion: a percentage and/or a fixed amount off, above an optional minimum."""

    code: str
    percent_off: int = 0
    amount_off_cents: int = 0
    min_subtotal_cents: int = 0
    expires: date | None = None

    def is_active(self, today: date) -> bool:
        return self.expires is None or today <= self.expires

    def discount_for(self, subtotal_cents: int) -> int:
        """Discount on `subtotal_cents`; never more than the subtotal itself."""
        if subtotal_cents < self.min_subtotal_cents:
            return 0
        percent = subtotal_cents * self.percent_off // 100
        return min(subtotal_cents, percent + self.amount_off_cents)


COUPONS: dict[str, Coupon] = {
    c.code: c
    for c in (
        Coupon("WELCOME10", percent_off=10),
        Coupon("SPRING5", amount_off_cents=500, min_subtotal_cents=2500, expires=date(2024, 6, 30)),
        Coupon("VIP25", percent_off=25, min_subtotal_cents=10000),
    )
}

# Sales tax in basis points (1/100 of a percent) by shipping region.
TAX_RATES_BP: dict[str, int] = {"CA": 725, "NY": 400, "TX": 625, "WA": 650, "OR": 0}


def normalize_code(code: str) -> str:
    """Customers type codes in any case and paste them with spaces."""
    return code.strip().upper()


def find_coupon(code: str, *, today: date) -> Coupon:
    """The active coupon for `code`, or InvalidCouponError."""
    coupon = COUPONS.get(normalize_code(code))
    if coupon is None or not coupon.is_active(today):
        raise InvalidCouponError(code)
    return coupon


def tax_for(taxable_cents: int, region: str) -> int:
    """Sales tax on `taxable_cents` in `region`, rounded half up to the cent."""
    rate = TAX_RATES_BP.get(region)
    if rate is None:
        raise PricingError(f"we do not ship to region {region!r}")
    return (taxable_cents * rate + 5000) // 10000


def price_cart(cart: Cart, *, coupon_code: str | None = None, today: date) -> Quote:
    """Quote for `cart` without shipping: subtotal, coupon discount and sales tax."""
    subtotal = cart.subtotal_cents
    discount = 0
    applied: str | None = None
    if coupon_code:
        coupon = find_coupon(coupon_code, today=today)
        discount = coupon.discount_for(subtotal)
        applied = coupon.code
    taxable = sum(line.total_cents for line in cart.items if line.product.taxable)
    # The discount is spread over all lines in proportion, so taxable goods carry their share.
    taxable_discount = discount * taxable // subtotal if subtotal else 0
    tax = tax_for(taxable - taxable_discount, cart.region)
    return Quote(subtotal_cents=subtotal, discount_cents=discount, tax_cents=tax, coupon_code=applied)
