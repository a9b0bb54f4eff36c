"""Stock levels and all-or-nothing reservations for a cart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shopcart.models import Cart

# A SKU at or below this many units shows up in the buyers' low-stock report.
LOW_STOCK_THRESHOLD = 10


class OutOfStockError(Exception):
    """Not enough units of a SKU to fill the cart; the HTTP layer answers 409."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"{sku}: requested {requested}, only {available} left")
        self.sku = sku
        self.requested = requested
        self.available = available


@dataclass(frozen=True)
class Reservation:
    """Units held for one checkout; release it if payment fails."""

    lines: tuple[tuple[str, int], ...]


class Inventory:
    """In-memory stock levels (the warehouse system syncs these every few minutes)."""

    def __init__(self, stock: Mapping[str, int] | None = None) -> None:
        self._stock: dict[str, int] = dict(stock or {})

    def available(self, sku: str) -> int:
        return self._stock.get(sku, 0)

    def restock(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("restock quantity must be positive")
        self._stock[sku] = self.available(sku) + quantity

    def reserve(self, cart: Cart) -> Reservation:
        """Hold every line of `cart`, or nothing at all if any line is short."""
        wanted: dict[str, int] = {}
        for line in cart.items:
            wanted[line.product.sku] = wanted.get(line.product.sku, 0) + line.quantity
        for sku, quantity in wanted.items():
            if self.available(sku) < quantity:
                raise OutOfStockError(sku, quantity, self.available(sku))
        for sku, quantity in wanted.items():
            self._stock[sku] -= quantity
        return Reservation(lines=tuple(sorted(wanted.items())))

    def release(self, reservation: Reservation) -> None:
        """Give held units back, e.g. after a declined payment."""
        for sku, quantity in reservation.lines:
            self._stock[sku] = self.available(sku) + quantity

    def low_stock(self, threshold: int = LOW_STOCK_THRESHOLD) -> list[str]:
        """SKUs at or below `threshold` units, for the buyers' daily report."""
        return sorted(sku for sku, units in self._stock.items() if units <= threshold)
