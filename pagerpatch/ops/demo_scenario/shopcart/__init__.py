"""shopcart: the checkout service behind POST /checkout (pricing, coupons, tax, shipping, stock)."""

__version__ = "1.4.0"
