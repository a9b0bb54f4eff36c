import pytest

from shopcart.inventory import Inventory, OutOfStockError
from shopcart.models import Cart, Product

MUG = Product("MUG-001", "Enamel camp mug", 1450)
LAMP = Product("LAMP-330", "Rechargeable lantern", 5800)


def test_reserve_takes_units_out_of_stock() -> None:
    inventory = Inventory({"MUG-001": 5, "LAMP-330": 2})
    cart = Cart("cus_1", "CA")
    cart.add(MUG, 2)
    reservation = inventory.reserve(cart)
    assert reservation.lines == (("MUG-001", 2),)
    assert inventory.available("MUG-001") == 3


def test_reserve_is_all_or_nothing() -> None:
    inventory = Inventory({"MUG-001": 5, "LAMP-330": 1})
    cart = Cart("cus_1", "CA")
    cart.add(MUG, 2)
    cart.add(LAMP, 2)
    with pytest.raises(OutOfStockError) as excinfo:
        inventory.reserve(cart)
    assert (excinfo.value.sku, excinfo.value.available) == ("LAMP-330", 1)
    assert inventory.available("MUG-001") == 5


def test_release_and_restock_give_units_back() -> None:
    inventory = Inventory({"MUG-001": 2})
    cart = Cart("cus_1", "CA")
    cart.add(MUG, 2)
    inventory.release(inventory.reserve(cart))
    inventory.restock("MUG-001", 3)
    assert inventory.available("MUG-001") == 5
    with pytest.raises(ValueError):
        inventory.restock("MUG-001", 0)


def test_low_stock_report_lists_skus_at_or_below_threshold() -> None:
    inventory = Inventory({"MUG-001": 120, "LAMP-330": 6, "BOOK-207": 10})
    assert inventory.low_stock() == ["BOOK-207", "LAMP-330"]
    assert inventory.low_stock(threshold=5) == []
