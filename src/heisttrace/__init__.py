"""heisttrace: follow stolen cryptocurrency and account for every unit of it.

The package folders follow the data flow:
sources -> ledger -> labels -> conversions -> trace -> report / web.
"""

__version__ = "0.1.0"
