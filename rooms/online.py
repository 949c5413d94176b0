"""Who is online in one room, kept sorted as it changes.

Every `subscribed` frame lists the room's online users. Sorting the whole set for each
join made a room's joins quadratic: 1,000 people joining one room sorted 1,000 lists of up
to 1,000 names. Here each change costs one binary search and one memmove instead.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class OnlineUsers:
    __slots__ = ("_names", "_sorted")

    def __init__(self, users: Iterable[str] = ()) -> None:
        self._names: set[str] = set(users)
        self._sorted: list[str] = sorted(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._sorted)

    def add(self, user_id: str) -> None:
        if user_id not in self._names:
            self._names.add(user_id)
            bisect.insort(self._sorted, user_id)

    def discard(self, user_id: str) -> None:
        if user_id in self._names:
            self._names.remove(user_id)
            del self._sorted[bisect.bisect_left(self._sorted, user_id)]

    def as_set(self) -> set[str]:
        """A copy, for set arithmetic against what was last announced."""
        return set(self._names)

    def difference(self, other: set[str]) -> set[str]:
        return self._names - other

    def sorted(self) -> list[str]:
        """A copy in order: the frame that carries it must not change as the room does."""
        return list(self._sorted)
