"""Which Dask workers may grade a run (main process): one grader everywhere.

``Gate`` examines each worker as it joins the cluster (``remote.examine``, on
the worker) and admits it only when its grader and course fingerprints are the
main process's, its reference outputs agree with the main process's within the
scoring tolerance, it may start processes (a Dask worker is a daemonic process
unless ``distributed.worker.daemon`` is off), and, unless the run is
``--unsafe-no-sandbox``, its sandbox works. An admitted worker gets the run's resources (``remote.grant``), which
every student's task requires; a refused one gets nothing, and
``differences`` names why, file by file.
"""
from . import fingerprint, remote

NAMED = 4  # files named in a message; the rest are counted


def _files(kind, theirs, mine):
    """What differs between two {path: digest} lists, in words."""
    parts = []
    if "torch" in mine and theirs.get("torch") != mine["torch"]:
        parts.append(f"torch {theirs.get('torch', '?')} у рабочего, {mine['torch']} здесь")
    theirs = {k: v for k, v in theirs.items() if k != "torch"}
    mine = {k: v for k, v in mine.items() if k != "torch"}
    for words, paths in (("изменены", [p for p in mine if p in theirs and theirs[p] != mine[p]]),
                         ("нет у рабочего", [p for p in mine if p not in theirs]),
                         ("лишние у рабочего", [p for p in theirs if p not in mine])):
        if paths:
            more = f" и ещё {len(paths) - NAMED}" if len(paths) > NAMED else ""
            parts.append(f"{words}: {', '.join(sorted(paths)[:NAMED])}{more}")
    return f"{kind}: " + ("; ".join(parts) or "отпечатки различаются")


def differences(run, facts, mine=None):
    """Why a worker with ``facts`` (``remote.examine``) may not grade ``run`` (cluster.py), in
    Russian; empty when it may. ``mine``: {"grader": files, "course": files} of this process
    (``fingerprint.grader_files``/``course_files``), computed here when not given."""
    reasons = []
    if facts.get("grader") != run["grader"]:
        mine_files = (mine or {}).get("grader") or fingerprint.grader_files()
        reasons.append(_files("другой проверяющий код", facts.get("grader_files", {}), mine_files))
    if facts.get("course") != run["course"]:
        mine_files = (mine or {}).get("course") or fingerprint.course_files()
        reasons.append(_files("другой курс", facts.get("course_files", {}), mine_files))
    if run["sandbox"] and not (facts.get("sandbox") or [False])[0]:
        why = (facts.get("sandbox") or [False, "не проверена"])[1]
        reasons.append(f"нет рабочей песочницы bubblewrap ({why}): установите bubblewrap на этом "
                       "рабочем или, понимая риск, запустите grade с --unsafe-no-sandbox")
    if facts.get("daemon", True):
        reasons.append("рабочий процесс Dask демонический и не может запускать процессы проверки: "
                       "запускайте dask worker с DASK_DISTRIBUTED__WORKER__DAEMON=False (или --no-nanny)")
    if not reasons:
        differs = facts.get("reference")
        if differs is None:
            reasons.append("эталонные выходы не посчитаны")
        elif differs:
            named = ", ".join(f"{name} ({'нет' if d is None else f'макс. |Δ| {d:.2g}'})"
                              for name, d in sorted(differs.items())[:NAMED])
            reasons.append("эталонные выходы этого рабочего расходятся с выходами основного процесса "
                           f"сильнее допуска проверки: {named}")
    return reasons


def describe(address, facts):
    """A worker in words: its address, host and folder."""
    if not facts:
        return f"рабочий Dask {address}"
    return f"рабочий Dask {address} ({facts.get('host', '?')}, {facts.get('root', '?')})"


class Gate:
    """The admission of a cluster's workers to one run, as they come and go (see the module doc).

    ``poll`` examines newcomers and settles finished examinations without waiting;
    ``admitted`` holds the addresses of the admitted workers that are still there.
    """

    def __init__(self, client, run, log):
        self.client, self.run, self.log = client, run, log
        self.resources = {remote.SLOT: 1, remote.run_resource(run["key"]): 1}
        self.examining = {}   # future -> address
        self.known = set()    # addresses examined or being examined, still in the cluster
        self.admitted = set()
        self.ever_admitted = set()
        self.refused = {}     # address -> reasons
        self._mine = {}
        self._examinations = 0

    def poll(self):
        present = set(self.client.nthreads())
        for address in sorted(present - self.known):
            self.known.add(address)
            self._examinations += 1
            future = self.client.submit(remote.examine, self.run, workers=[address],
                                        allow_other_workers=False, pure=False,
                                        key=f"admit-{self.run['key']}-{self._examinations}")
            self.examining[future] = address
        for future, address in list(self.examining.items()):
            if future.done():
                del self.examining[future]
                self._settle(address, future)
            elif address not in present:  # it left before its examination ran
                del self.examining[future]
                future.cancel()
        for address in sorted(self.admitted - present):
            self.log(f"{describe(address, None)} ушёл; его студенты перейдут к другим рабочим")
        self.admitted &= present
        self.known &= present  # one that comes back at the same address is examined again

    def _settle(self, address, future):
        facts = {}
        try:
            facts = future.result()
            reasons = differences(self.run, facts, self._mine_files(facts))
        except Exception as exc:  # its copy cannot even run the examination (say, an old one)
            reasons = [f"проверка на нём не запускается: {type(exc).__name__}: {exc}"[:300]]
        if not reasons:
            answer = self.client.run(remote.grant, self.resources, workers=[address], on_error="return")
            if isinstance(answer.get(address), Exception):
                reasons = [f"не удалось выдать ресурсы Dask: {answer[address]}"[:300]]
        if reasons:
            self.refused[address] = reasons
            self.log(f"{describe(address, facts)} отклонён: " + "; ".join(reasons))
            return
        self.admitted.add(address)
        self.ever_admitted.add(address)
        threads = facts.get("nthreads", 1)
        extra = (f"; потоков у него {threads}, а проверяет он по одному студенту: запускайте "
                 "dask worker --nthreads 1 --nworkers N") if threads > 1 else ""
        self.log(f"{describe(address, facts)} допущен{extra}")

    def _mine_files(self, facts):
        if facts.get("grader") != self.run["grader"] and "grader" not in self._mine:
            self._mine["grader"] = fingerprint.grader_files()
        if facts.get("course") != self.run["course"] and "course" not in self._mine:
            self._mine["course"] = fingerprint.course_files()
        return self._mine
