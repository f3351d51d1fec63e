"""Validators: one module per kind of rule. Each yields one Violation per broken requirement.

Every validator has a ``rule`` id (the policy field under ``spec.rules``, or
``quota``), ``kinds`` (None: pods and pod templates) and ``subresources`` it
judges (default: only the main resource), and ``validate(ctx)``.
"""
