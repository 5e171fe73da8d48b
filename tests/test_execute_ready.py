"""A kernel that answers its first ``kernel_info`` late is still found ready (grading.execute.ready).

A helper's investigation of a submission graded 0 "nbgrader failed on it" on a loaded machine:
``ready`` waited 1 s for the reply to the request it had just sent, so once a reply came later
than that, every next read found the previous request's reply and it never matched again; after
60 s the kernel, alive and answering, was given up, and the student scored 0.
"""

from __future__ import annotations

import asyncio
import queue

from grading.execute import ready


class SlowFirstReply:
    """A client whose kernel answers each ``kernel_info`` one read late, as a slow start leaves it."""

    def __init__(self):
        self.sent, self.read, self.handled = [], 0, None
        self.parent = self

    def kernel_info(self) -> str:
        self.sent.append(f"request-{len(self.sent)}")
        return self.sent[-1]

    async def get_shell_msg(self, timeout: float):
        self.read += 1
        if self.read == 1:  # the first read times out: the kernel is still starting
            raise queue.Empty
        return {"parent_header": {"msg_id": self.sent[self.read - 2]}, "content": {}}

    async def get_iopub_msg(self, timeout: float):
        return {"parent_header": {"msg_id": self.sent[0]}, "msg_type": "status",
                "content": {"execution_state": "idle"}}

    def is_alive(self) -> bool:
        return True

    def _handle_kernel_info_reply(self, reply) -> None:
        self.handled = reply


def test_a_reply_to_an_earlier_request_counts():
    client = SlowFirstReply()
    asyncio.run(ready(client, timeout=5))
    assert client.handled is not None and client.handled["parent_header"]["msg_id"] == "request-0"
    assert len(client.sent) == 2  # ready at the second read, not after 60 s of requests

