"""The grader's client of a student's kernel: what the kernel sends is bounded before it is buffered.

RUNS IN A GRADING WORKER. ZeroMQ drops a message over ``max_message_bytes`` together with
the connection it came on (which reconnects) and queues at most ``queued_messages`` per
socket, so a kernel cannot make the grader hold gigabytes; ``dropped`` says how often a
connection was dropped (the message is lost, and may have been the cell's last one).
"""
import uuid

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from traitlets import Integer
from zmq.utils.monitor import recv_monitor_message


class BoundedKernelClient(AsyncKernelClient):
    max_message_bytes = Integer(3 * 2**20, help="Largest message taken from a kernel (bytes): "
                                "above ProbingExecute.max_output_bytes, which nothing larger fits.").tag(config=True)
    queued_messages = Integer(64, help="Messages queued per socket; a flood beyond it waits in "
                              "the kernel, or is dropped there.").tag(config=True)
    _monitors = ()

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        context.setsockopt(zmq.RCVHWM, self.queued_messages)
        return context

    def start_channels(self, *args, **kwargs):
        super().start_channels(*args, **kwargs)
        self._monitors = []
        for channel in (self.iopub_channel, self.shell_channel):
            address = f"inproc://kernel-client-{uuid.uuid4().hex}"
            channel.socket.monitor(address, zmq.EVENT_DISCONNECTED)
            monitor = self.context.socket(zmq.PAIR)  # the context's own: closed with it
            monitor.connect(address)
            self._monitors.append((channel.socket, monitor))

    def dropped(self):
        """How often ZeroMQ dropped a connection to the kernel since the last call."""
        count = 0
        for _, monitor in self._monitors:
            reader = zmq.Socket.shadow(monitor.underlying)  # a plain read, not a future
            while True:
                try:
                    recv_monitor_message(reader, zmq.NOBLOCK)
                except zmq.Again:
                    break
                count += 1
        return count

    def stop_channels(self):
        for socket, monitor in self._monitors:
            try:
                socket.disable_monitor()
            except zmq.ZMQError:  # the socket is closed already
                pass
            monitor.close(linger=0)
        self._monitors = ()
        super().stop_channels()
        if self._created_context and not self.context.closed:  # now, not when garbage is collected:
            self.context.destroy(linger=0)                     # a worker grades many students
