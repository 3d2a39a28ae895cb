"""Waiting requests: round-robin across fairness keys (channels), a bound, per-user limits.

Thread-safe: the asyncio side adds and cancels, the worker thread takes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Waiting(Protocol):
    fairness_key: str
    user_id: int | None


W = TypeVar("W", bound=Waiting)


class QueueFull(Exception):
    """The bounded queue is full; `estimated_wait_s` says when to try again."""

    def __init__(self, estimated_wait_s: float) -> None:
        super().__init__(f"the queue is full; try again in about {estimated_wait_s:.0f} s")
        self.estimated_wait_s = estimated_wait_s


class UserBusy(Exception):
    """The user already has as many requests in flight as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"you already have {limit} request(s) being written; wait for one to finish")
        self.limit = limit


class FairQueue(Generic[W]):
    """Requests grouped by key; `take` serves keys in turn so one busy channel cannot starve others."""

    def __init__(self, max_waiting: int, max_per_user: int) -> None:
        self.max_waiting = max_waiting
        self.max_per_user = max_per_user
        self._lanes: OrderedDict[str, deque[W]] = OrderedDict()
        self._in_flight: dict[int, int] = {}  # user -> waiting + running
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(lane) for lane in self._lanes.values())

    def add(self, item: W, estimated_wait_s: Callable[[int], float]) -> None:
        """Queue `item` or raise QueueFull / UserBusy without queueing it."""
        with self._lock:
            self._refuse_if_no_room(item.user_id, estimated_wait_s)
            user = item.user_id
            if user is not None:
                self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self._lanes.setdefault(item.fairness_key, deque()).append(item)

    def check_room(self, user_id: int | None, estimated_wait_s: Callable[[int], float]) -> None:
        """Raise QueueFull / UserBusy if a request of this user would be refused now."""
        with self._lock:
            self._refuse_if_no_room(user_id, estimated_wait_s)

    def _refuse_if_no_room(self, user_id: int | None, estimated_wait_s: Callable[[int], float]) -> None:
        waiting = sum(len(lane) for lane in self._lanes.values())
        if waiting >= self.max_waiting:
            raise QueueFull(estimated_wait_s(waiting))
        if user_id is not None and self._in_flight.get(user_id, 0) >= self.max_per_user:
            raise UserBusy(self.max_per_user)

    def take(self, count: int, accept: Callable[[W], bool] = lambda _: True) -> list[W]:
        """Up to `count` items, one key at a time in rotation; skips items `accept` refuses."""
        taken: list[W] = []
        with self._lock:
            progress = True
            while len(taken) < count and progress:
                progress = False
                for key in list(self._lanes):
                    lane = self._lanes[key]
                    item = next((it for it in lane if accept(it)), None)
                    if item is None:
                        continue
                    lane.remove(item)
                    taken.append(item)
                    progress = True
                    # The served key goes to the back of the rotation.
                    self._lanes.move_to_end(key)
                    if not lane:
                        del self._lanes[key]
                    if len(taken) >= count:
                        break
        return taken

    def requeue_front(self, items: list[W]) -> None:
        """Put taken-but-not-started items back at the head of their lanes, in order."""
        with self._lock:
            for item in reversed(items):
                self._lanes.setdefault(item.fairness_key, deque()).appendleft(item)
                self._lanes.move_to_end(item.fairness_key, last=False)

    def remove(self, item: W) -> bool:
        """Drop a waiting item (cancelled); True if it was waiting."""
        with self._lock:
            lane = self._lanes.get(item.fairness_key)
            if lane is None or item not in lane:
                return False
            lane.remove(item)
            if not lane:
                del self._lanes[item.fairness_key]
        self.release(item)
        return True

    def release(self, item: W) -> None:
        """The item finished (or left): it no longer counts toward its user's limit."""
        user = item.user_id
        if user is None:
            return
        with self._lock:
            left = self._in_flight.get(user, 0) - 1
            if left > 0:
                self._in_flight[user] = left
            else:
                self._in_flight.pop(user, None)

    def position(self, item: W) -> int | None:
        """1-based place in the order `take` would serve, or None if not waiting."""
        with self._lock:
            lane = self._lanes.get(item.fairness_key)
            if lane is None or item not in lane:
                return None
            depth = lane.index(item)
            keys = list(self._lanes)
            mine = keys.index(item.fairness_key)
            ahead = 0
            for index, key in enumerate(keys):
                other = len(self._lanes[key])
                # Full rounds before ours, plus this round's keys served before ours.
                ahead += min(other, depth) + (1 if index < mine and other > depth else 0)
            return ahead + 1
