"""neocloud-risk: Monte Carlo supply-chain and demand risk engine for AI infrastructure."""

__version__ = "0.1.0"
