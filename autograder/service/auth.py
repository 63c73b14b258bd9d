"""Who is asking: personal tokens (stored as SHA-256 hashes), sessions after sign-in (a cookie
holding a random session key, also stored hashed), CSRF tokens, and request rates.

A personal link is ``PUBLIC_URL/signin#TOKEN``: the token sits in the fragment, which browsers
never send, so it reaches no server log or proxy log; the sign-in page posts it once and the
browser carries only the session cookie afterwards (HttpOnly, SameSite=Lax, Secure over
HTTPS). The kit's client sends the token in an ``Authorization: Bearer`` header.
"""
import collections
import hashlib
import hmac
import secrets
import threading
import time

COOKIE = "gpt_session"
SESSION_SECONDS = 30 * 24 * 3600


def new_token():
    return secrets.token_urlsafe(24)


def hashed(token):
    return hashlib.sha256(str(token).encode("utf-8", "surrogateescape")).hexdigest()


def link(public_url, token):
    return f"{public_url.rstrip('/')}/signin#{token}"


class Identity:
    """A signed-in student or instructor (``csrf``: the session's token; None for a bearer)."""

    def __init__(self, role, student_id=None, csrf=None, session=None):
        self.role, self.student_id, self.csrf, self.session = role, student_id, csrf, session

    @property
    def instructor(self):
        return self.role == "instructor"


def sign_in(store, token):
    """A new session for ``token``: (cookie value, Identity), or None for an unknown token."""
    found = store.find_token(hashed(token)) if token else None
    if not found:
        return None
    role, student_id = found
    key, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    store.add_session(hashed(key), role, student_id, csrf, SESSION_SECONDS)
    return key, Identity(role, student_id, csrf, hashed(key))


def from_cookie(store, value):
    if not value:
        return None
    row = store.find_session(hashed(value))
    return Identity(row["role"], row["student_id"], row["csrf"], row["hash"]) if row else None


def from_bearer(store, header):
    if not header or not header.lower().startswith("bearer "):
        return None
    found = store.find_token(hashed(header[7:].strip()))
    return Identity(found[0], found[1]) if found else None


def csrf_ok(identity, sent):
    return bool(identity and identity.csrf and sent) and hmac.compare_digest(identity.csrf, str(sent))


class Rates:
    """Sliding-window rate limits in memory: at most ``limit`` events per ``window`` seconds per key."""

    def __init__(self):
        self._events = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def allow(self, key, limit, window=60.0, now=None):
        """Record an event for ``key`` and say whether it is within the limit (0: no limit)."""
        if not limit:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events[key]
            while events and events[0] <= now - window:
                events.popleft()
            if len(events) >= limit:
                return False
            events.append(now)
            if len(self._events) > 100_000:   # many keys (addresses): forget the idle ones
                for k in [k for k, v in self._events.items() if not v]:
                    del self._events[k]
            return True
