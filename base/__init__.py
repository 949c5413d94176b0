"""The vocabulary every layer speaks: who is calling, what went wrong, what time it is.

Imports nothing of ours, so anything may import it.
"""
