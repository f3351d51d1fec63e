"""Mutators: one module per kind of default. Each fills only what is absent.

Every mutator has a ``rule`` id (``defaults.<field>``) and a ``mutate(ctx)``
method; it reads ``ctx.target`` and writes only through ``ctx.put``,
``ctx.put_deep``, ``ctx.append`` and ``ctx.remove`` so the JSON Patch is recorded as it goes.
"""
