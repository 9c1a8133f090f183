"""Contract suites: base test classes that certify a backend does what the core relies on.

Subclass one, provide the fixture that builds your backend, and run pytest::

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path): ...

The base classes have no ``Test`` prefix, so pytest collects them only through a subclass.
"""

from __future__ import annotations

from aecflow.testing.contracts.notify import NotifierContract
from aecflow.testing.contracts.processing import ProcessorContract
from aecflow.testing.contracts.storage import StorageContract

__all__ = ["NotifierContract", "ProcessorContract", "StorageContract"]
