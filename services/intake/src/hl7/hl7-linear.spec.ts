import fc from 'fast-check';
import { decodeHl7 } from './charset';
import { Hl7Error } from './hl7-errors';
import { mapHl7 } from './hl7-mapping';
import { Hl7Message, MAX_REPETITIONS, MAX_SEGMENTS } from './hl7-message';

/**
 * Parsing time must grow linearly with the input (issue 11: a trailing-whitespace regex made a
 * 60,000-space frame take seconds). No absolute times: the same number of bytes is parsed once as
 * one large message and once as 32 small ones; a linear parser takes about as long for both, a
 * quadratic one 32 times as long for the large one.
 */
const HEAD = 'MSH|^~\\&|LAB|STMARYS|CLINLEDGER|CLINLEDGER|20261125120500||ORU^R01|C1|P|2.5.1\rPID|1||MRN1^^^STMARYS^MR\rOBR|1|||X^Y';

/** Where the adversarial run goes. */
const PLACES: Record<string, (run: string, tail: string) => string> = {
  end: (run, tail) => `${HEAD}\rNTE|1||x${run}${tail}`,
  afterLastSegment: (run, tail) => `${HEAD}${run}${tail}`,
  pid3: (run, tail) => HEAD.replace('MRN1^^^STMARYS^MR', `MRN1${run}${tail}^^^STMARYS^MR`),
  pid3first: (run, tail) => HEAD.replace('MRN1^^^STMARYS^MR', `${run}${tail}MRN1^^^STMARYS^MR`),
  msh10: (run, tail) => HEAD.replace('|C1|', `|C1${run}${tail}|`),
  msh4: (run, tail) => HEAD.replace('|STMARYS|', `|STMARYS${run}${tail}|`),
  obr24: (run, tail) => `${HEAD}|||||||||||||||||||RAD${run}${tail}`,
  segments: (run, tail) => `${HEAD}${run.split('').map((c) => `\rNTE|${c}`).join('')}${tail}`,
};

/** Decoding, parsing and mapping, as Hl7IntakeService does; refusals are fine, only time counts. */
function handle(bytes: Buffer): void {
  try {
    const msg = Hl7Message.parse(decodeHl7(bytes).text);
    mapHl7(msg, { timeZone: 'UTC', authorities: {}, processingIds: ['P'] });
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
  }
}

function fastest(runs: number, work: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    work();
    best = Math.min(best, Number(process.hrtime.bigint() - t0));
  }
  return best;
}

describe('HL7 parsing time is linear in the input size', () => {
  it('property: 32 x n bytes at once cost at most a few times 32 messages of n bytes', () => {
    const SMALL = 1_000;
    const FACTOR = 32;
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(PLACES)),
        fc.constantFrom(' ', '\t', '\r', '\n', '\r\n', '|', '^', '~', '&', '\\', '\\E\\', '\\X41\\', '\\Xzz', 'A', '9', '\u00a0', '\u3000'),
        fc.constantFrom('', 'x', ' x', '\r', '\\', '|'),
        (place, unit, tail) => {
          const build = (n: number) => Buffer.from(PLACES[place]!(unit.repeat(Math.ceil(n / unit.length)), tail), 'utf8');
          const small = build(SMALL);
          const large = build(SMALL * FACTOR);
          handle(small); // warm up
          handle(large);
          const measure = (runs: number) =>
            fastest(runs, () => handle(large)) /
            fastest(runs, () => {
              for (let i = 0; i < FACTOR; i++) handle(small);
            });
          // Linear: about 1 to 5 (the garbage collector works harder on one large message than on
          // many small ones). Quadratic: 20 or more. A high reading is measured again, longer, so
          // that a busy machine does not fail the test.
          let ratio = measure(5);
          if (ratio > 10) ratio = Math.min(ratio, measure(25));
          if (ratio > 10) throw new Error(`${place} with a run of ${JSON.stringify(unit)} then ${JSON.stringify(tail)}: ${FACTOR}x the bytes cost ${ratio.toFixed(1)}x the time of ${FACTOR} small messages`);
          return true;
        },
      ),
      // No shrinking: one slow case is the finding, and re-running it would only take long.
      { numRuns: 60, endOnFailure: true },
    );
  });

  it('refuses absurd structure cheaply instead of building it: too many segments or repetitions (AE)', () => {
    const segments = `${HEAD}${'\rNTE|1'.repeat(MAX_SEGMENTS)}`;
    expect(() => Hl7Message.parse(segments)).toThrow(new RegExp(`more than ${MAX_SEGMENTS} segments`));
    const reps = Hl7Message.parse(HEAD.replace('MRN1^^^STMARYS^MR', `${'~'.repeat(MAX_REPETITIONS)}MRN1^^^STMARYS^MR`));
    expect(() => mapHl7(reps, { timeZone: 'UTC', authorities: {}, processingIds: ['P'] })).toThrow(/PID-3 has more than 1000 repetitions/);
    // A run of 60,000 spaces (issue 11's reproduction) is parsed, not trimmed quadratically.
    expect(Hl7Message.parse(`${HEAD}\rNTE|1||${' '.repeat(60_000)}x`).segmentNames()).toEqual(['MSH', 'PID', 'OBR', 'NTE']);
  });
});
