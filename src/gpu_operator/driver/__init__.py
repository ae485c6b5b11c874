"""The driver lifecycle: per-OS driver pools and their images, the driver pod's readiness
contract, the driver manager (the driver pod's init container) and the upgrade controller's state
machine — pure cores with thin shells; see docs/driver.md for how the operator calls them."""
