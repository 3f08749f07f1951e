/**
 * A check before anything on the server changes said no (no systemd, not a Swarm manager, no
 * such release to roll back to). The run fails with this message alone: no audit entry and no
 * diagnostics, since nothing happened that a person would need to trace.
 */
export class RefusedBeforeChange extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedBeforeChange';
  }
}
