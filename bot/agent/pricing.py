"""What a model call costs, from its token counts.

    cost_usd("claude-sonnet-5-5", input_tokens=1200, output_tokens=300,
             cache_read_tokens=4000, cache_write_tokens=0)   # → 0.0093

Prices are US dollars per million tokens, by model family (Anthropic's list prices for the
Opus, Sonnet and Haiku tiers when this was written). Cache reads cost 0.1× the input price and
5-minute cache writes 1.25×. A model id of an unknown family is priced as Sonnet so that cost
reports never silently show zero; `price_of(...).known` says whether the price was a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Price", "cost_usd", "price_of"]

_PER_MILLION = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Price:
    input: float
    output: float
    known: bool = True

    @property
    def cache_write(self) -> float:
        return self.input * 1.25

    @property
    def cache_read(self) -> float:
        return self.input * 0.1


_FAMILIES: tuple[tuple[str, Price], ...] = (
    ("opus", Price(input=5.0, output=25.0)),
    ("sonnet", Price(input=3.0, output=15.0)),
    ("haiku", Price(input=1.0, output=5.0)),
)
_FALLBACK = Price(input=3.0, output=15.0, known=False)


def price_of(model: str) -> Price:
    lowered = model.lower()
    for family, price in _FAMILIES:
        if family in lowered:
            return price
    return _FALLBACK


def cost_usd(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float:
    price = price_of(model)
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read_tokens * price.cache_read
        + cache_write_tokens * price.cache_write
    )
    return round(total / _PER_MILLION, 6)
