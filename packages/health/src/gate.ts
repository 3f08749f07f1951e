/** One thing the gate watches: the containers, one URL, one command. */
export interface Probe {
  name: string;
  check(): Promise<ProbeOutcome>;
}

/**
 * `waiting` means "not yet" (starting up, connection refused); `failed` means it cannot get
 * better by waiting (a container exited), so the gate fails at once instead of at its timeout.
 */
export interface ProbeOutcome {
  state: 'ok' | 'waiting' | 'failed';
  detail: string;
}

export interface GateOptions {
  /** Pause between rounds. */
  intervalMs: number;
  /**
   * Pause after a round in which something was not ok yet (default: intervalMs). Shorter, the
   * gate sees a container turn healthy soon after it does; the rounds of a streak stay
   * intervalMs apart, so what `successes` proves is unchanged.
   */
  waitingIntervalMs?: number;
  /** The whole gate gives up after this long. */
  timeoutMs: number;
  /** Consecutive rounds in which every probe is ok. */
  successes: number;
  /** Called after every round, e.g. for the log. */
  onRound?: (round: number, outcomes: readonly ProbeReport[]) => void;
  /**
   * News that something changed (the engine says a container turned healthy or stopped): a
   * waiting pause ends at once instead of at its end. The rounds of a streak stay intervalMs
   * apart whatever it says, so what `successes` proves is unchanged.
   */
  wake?: Wake;
}

/** A running count of events; the gate compares it before and after a round. */
export interface Wake {
  count(): number;
  /** Resolves once count() is above `seen`; may never resolve. */
  after(seen: number): Promise<void>;
}

export interface ProbeReport {
  name: string;
  state: ProbeOutcome['state'];
  detail: string;
  /** Milliseconds from the gate's start to this probe's first ok, if it was ever ok. */
  firstOkMs?: number;
}

export interface GateResult {
  ok: boolean;
  elapsedMs: number;
  rounds: number;
  probes: ProbeReport[];
  /** Why the gate failed, in words for the log and the job summary. */
  reason?: string;
  /** Names of probes that were not ok when the gate ended. */
  failing: string[];
}

/** A Wake fed by hand: `add()` for each event. */
export function wakeCounter(): Wake & { add(): void } {
  let events = 0;
  let waiting: { seen: number; resolve: () => void }[] = [];
  return {
    count: () => events,
    after(seen) {
      if (events > seen) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ seen, resolve }));
    },
    add() {
      events++;
      const due = waiting.filter((entry) => events > entry.seen);
      waiting = waiting.filter((entry) => events <= entry.seen);
      for (const entry of due) entry.resolve();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sleeps `ms`, or less if `wake` counts an event after `seen` (one that came during the round ends the pause at once). */
async function pause(ms: number, wake: Wake | undefined, seen: number): Promise<void> {
  if (!wake) return void (await sleep(ms));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), wake.after(seen)]);
  clearTimeout(timer);
}

/**
 * Runs every probe once per round until all are ok in `successes` consecutive rounds, one
 * fails outright, or the time is up. Probes run concurrently within a round, so a slow URL does
 * not delay the container check. The loop is bounded by `timeoutMs`.
 */
export async function runGate(probes: readonly Probe[], options: GateOptions): Promise<GateResult> {
  const start = performance.now();
  const firstOk = new Map<string, number>();
  let streak = 0;
  let rounds = 0;
  let last: ProbeReport[] = [];
  // What was wrong in the latest round that was not all ok: a streak the timeout cuts short still says why it started late.
  let lastProblem: string | undefined;
  const elapsed = () => performance.now() - start;
  const result = (ok: boolean, reason?: string): GateResult => ({
    ok,
    elapsedMs: Math.round(elapsed()),
    rounds,
    probes: last,
    failing: last.filter((probe) => probe.state !== 'ok').map((probe) => probe.name),
    ...(reason === undefined ? {} : { reason }),
  });

  for (;;) {
    rounds++;
    const seen = options.wake?.count() ?? 0;
    const outcomes = await Promise.all(
      probes.map((probe) => probe.check().catch((error: unknown): ProbeOutcome => ({ state: 'waiting', detail: (error as Error).message ?? String(error) }))),
    );
    last = probes.map((probe, index) => {
      const outcome = outcomes[index]!;
      if (outcome.state === 'ok' && !firstOk.has(probe.name)) firstOk.set(probe.name, Math.round(elapsed()));
      const at = firstOk.get(probe.name);
      return { name: probe.name, state: outcome.state, detail: outcome.detail, ...(at === undefined ? {} : { firstOkMs: at }) };
    });
    options.onRound?.(rounds, last);

    const failed = last.find((probe) => probe.state === 'failed');
    if (failed) return result(false, `${failed.name}: ${failed.detail}`);
    const waitingNow = last.filter((probe) => probe.state !== 'ok');
    if (waitingNow.length > 0) lastProblem = waitingNow.map((probe) => `${probe.name}: ${probe.detail}`).join('; ');
    streak = waitingNow.length === 0 ? streak + 1 : 0;
    if (streak >= options.successes) return result(true);
    const pauseMs = waitingNow.length > 0 ? Math.min(options.intervalMs, options.waitingIntervalMs ?? options.intervalMs) : options.intervalMs;
    if (elapsed() + pauseMs > options.timeoutMs) {
      const why =
        waitingNow.length > 0
          ? waitingNow.map((probe) => `${probe.name}: ${probe.detail}`).join('; ')
          : `only ${streak} of ${options.successes} consecutive successful checks${lastProblem === undefined ? '' : `; the last failed round: ${lastProblem}`}`;
      return result(false, `not healthy within ${Math.round(options.timeoutMs / 1000)}s (${why})`);
    }
    await pause(pauseMs, waitingNow.length > 0 ? options.wake : undefined, seen);
  }
}
