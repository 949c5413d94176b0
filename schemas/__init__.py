"""msgspec Structs for every REST body, WebSocket frame and setting.

Imports nothing else of ours.
"""
