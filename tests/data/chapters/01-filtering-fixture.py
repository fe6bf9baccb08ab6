# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. A fixture chapter with one exercise (tests/test_assignments.py)
#
# It follows the chapters' convention: a stub cell and a check cell, tagged.

# %%
from tests.assignment_fixture import EXERCISES

# %% [markdown]
# **Exercise.** Write `allows(filtering, contacted, source)`: does a packet from
# `source` reach Alice, who has sent to every endpoint in `contacted`?


# %% tags=["exercise-stub", "exercise:01-filtering"]
def allows(filtering: str, contacted: set[tuple[str, int]], source: tuple[str, int]) -> bool:
    """True when a NAT with this filtering lets a packet from ``source`` in."""
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:01-filtering"]
EXERCISES["01-filtering"]().check()
