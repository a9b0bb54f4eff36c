"""Domain models: products, carts and price quotes. Money is always integer cents."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Product:
    """Something we sell; `taxable` is False for tax-exempt goods such as books."""

    sku: str
    name: str
    price_cents: int
    taxable: bool = True
    weight_grams: int = 0

    def __post_init__(self) -> None:
        if self.price_cents < 0:
            raise ValueError(f"{self.sku}: price cannot be negative")


@dataclass(frozen=True)
class LineItem:
    """One product and how many of it the customer wants."""

    product: Product
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.product.price_cents * self.quantity


@dataclass
class Cart:
    """A customer's cart; `region` is the shipping region and decides the sales tax rate."""

    customer_id: str
    region: str
    items: list[LineItem] = field(default_factory=list)

    def add(self, product: Product, quantity: int = 1) -> None:
        """Add `quantity` of `product`, merging with an existing line for the same SKU."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        for index, line in enumerate(self.items):
            if line.product.sku == product.sku:
                self.items[index] = LineItem(product, line.quantity + quantity)
                return
        self.items.append(LineItem(product, quantity))

    def remove(self, sku: str) -> None:
        """Drop every line for `sku` (no error if it is not in the cart)."""
        self.items = [line for line in self.items if line.product.sku != sku]

    @property
    def is_empty(self) -> bool:
        return not self.items

    @property
    def subtotal_cents(self) -> int:
        return sum(line.total_cents for line in self.items)

    @property
    def weight_grams(self) -> int:
        return sum(line.product.weight_grams * line.quantity for line in self.items)


@dataclass(frozen=True)
class Quote:
    """What the customer pays, broken down the way the receipt shows it."""

    subtotal_cents: int
    discount_cents: int = 0
    shipping_cents: int = 0
    tax_cents: int = 0
    coupon_code: str | None = None

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents - self.discount_cents + self.shipping_cents + self.tax_cents


def format_cents(cents: int) -> str:
    """Render cents as dollars for receipts: 123456 -> "$1,234.56"."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"
