"""CEL for tenant rules (``spec.rules.cel``), on cel-cpp through cel-expr-python.

- ``kinds``: the kinds a rule may name (no CEL import: the schema reads it);
- ``library``: Kubernetes' CEL libraries cel-cpp lacks (quantity, lists, regex, URL, IP/CIDR);
- ``program``: compiling a rule once per load (checked, then bound for evaluation);
- ``ast``, ``analysis``: the checked tree, its cost bound and what it reads;
- ``rewrite``: token-level rewrites (variables -> ``cel.bind``; pod -> template for VAPs).

The validator is :class:`webhook.core.validators.cel.CelRule`; docs/cel.md is the user's guide.
Importing this package does not load the CEL library (about 0.1 s): policies without CEL
rules never pay for it.
"""
