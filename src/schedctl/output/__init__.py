"""Output: every JSON document (json.py), text and tables for people (text.py), the plan of an
apply (plan.py). Operations return values; only this package formats them."""
