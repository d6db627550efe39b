"""What learning sees, whatever the source: one small set of normalised
events. Readers (strace, audit logs) produce them; ``synth`` turns a
collection of them into policy additions.

Memory grows with the number of *distinct* events, not input lines: the
collector counts repeats instead of storing them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class File:
    """An access to a path. ``mode``: r read, w write, c create (in its
    directory), n opened with O_CREAT when whether it existed is unknown,
    x exec, m map executable, d list a directory."""

    path: str
    mode: str


@dataclass(frozen=True)
class Syscall:
    name: str


@dataclass(frozen=True)
class Socket:
    family: str  # inet, inet6, unix, netlink, packet
    type: str  # stream, dgram, raw, seqpacket


@dataclass(frozen=True)
class Port:
    direction: str  # connect | bind
    protocol: str  # tcp | udp
    port: int


@dataclass(frozen=True)
class SockOpt:
    name: str  # corral's name, e.g. tcp_nodelay; or LEVEL/OPTION when unknown


@dataclass(frozen=True)
class Capability:
    name: str


@dataclass(frozen=True)
class Ioctl:
    """An ioctl request: its number (-1 when the reader could not tell it)
    and how the source spelled it, for the evidence."""

    request: int
    text: str


@dataclass(frozen=True)
class Call:
    """A call the policy's filter refused (from ``corral run --log``'s
    record), with the arguments a flag's filter looks at (None: not kept)."""

    name: str
    args: tuple[int, ...] | None = None


Event = File | Syscall | Socket | Port | SockOpt | Capability | Ioctl | Call


#: Readers' remarks kept (``Collected.note``).
MAX_NOTES = 50


@dataclass
class Collected:
    """Distinct events, each with how often and by what it was seen."""

    events: Counter[Event] = field(default_factory=Counter)
    evidence: dict[Event, Counter[str]] = field(default_factory=dict)
    lines: int = 0
    unknown: int = 0
    samples: list[str] = field(default_factory=list)
    #: Which AppArmor profile (or corral policy, for a run record) each
    #: event was seen under; events of no profile (seccomp, strace) have none.
    profiles: dict[Event, set[str]] = field(default_factory=dict)
    #: What a reader saw and could not turn into an event, in words (one
    #: per distinct case, at most ``MAX_NOTES``): the learner prints them.
    notes: list[str] = field(default_factory=list)
    #: Lines that carry an event's text in no shape the kernel or auditd
    #: writes (another program's log line): never events; a few kept.
    forged: int = 0
    forged_samples: list[str] = field(default_factory=list)
    #: Events read from a text format (syslog, kern.log, journalctl's short
    #: output, dmesg), which cannot prove the kernel wrote them.
    text_events: int = 0

    def add(self, event: Event, by: str, n: int = 1, profile: str = "") -> None:
        self.events[event] += n
        evidence = self.evidence.get(event)
        if evidence is None:
            evidence = self.evidence[event] = Counter()
        evidence[by] += n
        if profile:
            self.profiles.setdefault(event, set()).add(profile)

    def profile_names(self) -> list[str]:
        return sorted({p for names in self.profiles.values() for p in names})

    def only(self, profile: str, unattributed: bool) -> "Collected":
        """The events seen under PROFILE (and those of no profile, if asked)."""
        out = Collected(lines=self.lines, unknown=self.unknown, samples=list(self.samples), notes=list(self.notes), forged=self.forged, forged_samples=list(self.forged_samples), text_events=self.text_events)
        for event, n in self.events.items():
            names = self.profiles.get(event)
            if (names and profile in names) or (not names and unattributed):
                out.events[event] = n
                out.evidence[event] = self.evidence.get(event, Counter())
                if names:
                    out.profiles[event] = {profile}
        return out

    def replace(self, old: Event, new: Event) -> None:
        """Restate an event (its counts and evidence move to NEW)."""
        n = self.events.pop(old, 0)
        if n:
            self.events[new] += n
        for by, k in self.evidence.pop(old, Counter()).items():
            self.evidence.setdefault(new, Counter())[by] += k

    def note(self, text: str) -> None:
        """A reader's remark for the user (repeats and overflow are counted away)."""
        if text in self.notes:
            return
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("more remarks of the readers were left out")

    def skip(self, line: str) -> None:
        """A line no reader understood: counted, and a few kept as samples."""
        self.unknown += 1
        if len(self.samples) < 5:
            self.samples.append(line.rstrip("\n")[:200])

    def why(self, event: Event) -> str:
        """Evidence for a generated line: 'openat x3, execve x1'."""
        return ", ".join(f"{by} x{n}" for by, n in self.evidence.get(event, Counter()).most_common(3))
