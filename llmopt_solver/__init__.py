"""llmopt: pick the cheapest cloud GPU instance and KV-cache offload for an offline LLM batch job."""

__version__ = "0.1.0"
