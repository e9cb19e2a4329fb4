import { applyXidPolicy, defaultXidCatalog } from './catalog.js';
import { classifyXid } from './classify.js';
import { applyXidContext, type XidContextEvent } from './context.js';

const MIN = 60_000;
const GPU = 'GPU-1';

/** An event of one GPU; messages are real kernel texts (test/fixtures/xid/corpus.jsonl). */
function event(xid: number, message: string, atMin: number, extra: Partial<XidContextEvent> = {}): XidContextEvent {
  const classification = classifyXid(xid, message);
  return {
    xid,
    gpuKey: GPU,
    pid: null,
    firstSeenMs: atMin * MIN,
    lastSeenMs: atMin * MIN,
    classification,
    subKey: classification.subKey,
    ...extra,
  };
}

function buckets(events: XidContextEvent[]): string[] {
  return applyXidContext(events).map((c, i) => `${events[i]?.xid}:${c.immediateAction}`);
}

describe("rules that depend on the GPU's other XIDs", () => {
  it('45 alone → restart Fabric Manager; next to another XID → act on that one', () => {
    expect(buckets([event(45, 'channel 0x0000000a', 10)])).toEqual(['45:RESTART_FM']);
    expect(
      buckets([event(149, 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000)', 10), event(45, 'channel 0x0000000a', 10.2)]),
    ).toEqual(['149:RESET_GPU', '45:IGNORE (sympathetic)']);
    // Another GPU's XID does not explain this GPU's 45.
    expect(
      buckets([event(13, 'Graphics Exception: ESR 0x404000=0x80000002', 10, { gpuKey: 'GPU-2' }), event(45, 'channel 0x0000000a', 10)]),
    ).toEqual(['13:RESTART_APP', '45:RESTART_FM']);
    // Far apart in time: unrelated.
    expect(buckets([event(13, 'Graphics Exception: ESR 0x404000=0x80000002', 10), event(45, 'channel 0x0000000a', 30)])).toEqual([
      '13:RESTART_APP',
      '45:RESTART_FM',
    ]);
  });

  it('48 alone → reset; with 63 or 64 → drain and reset', () => {
    const dbe =
      'An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x12bac1c3e0 partition ' +
      '2, subpartition 1.';
    const remap = 'Row Remapper: New row (0x00000012bac1c3e0) marked for remapping, reset gpu to activate.';
    expect(buckets([event(48, dbe, 5)])).toEqual(['48:RESET_GPU']);
    expect(buckets([event(48, dbe, 5), event(63, remap, 5)])).toEqual(['48:DRAIN_AND_RESET', '63:DRAIN_AND_RESET']);
  });

  it('13 on the same GPC+TPC in three processes suggests hardware; other TPCs or one process do not', () => {
    const sm = (tpc: number): string => `Graphics SM Warp Exception on (GPC 1, TPC ${tpc}, SM 0): Illegal Instruction Encoding`;
    const sameUnit = [1, 2, 3].map((pid) => event(13, sm(0), pid * 60, { pid }));
    expect(buckets(sameUnit)).toEqual(['13:HW_SUSPECTED', '13:HW_SUSPECTED', '13:HW_SUSPECTED']);
    expect(applyXidContext(sameUnit)[0]?.severity).toBe('critical');
    expect(buckets([1, 2, 3].map((pid) => event(13, sm(pid), pid * 60, { pid })))).toEqual([
      '13:RESTART_APP',
      '13:RESTART_APP',
      '13:RESTART_APP',
    ]);
    expect(buckets([event(13, sm(0), 1, { pid: 7 }), event(13, sm(0), 2, { pid: 7 })])).toEqual(['13:RESTART_APP', '13:RESTART_APP']);
  });

  it('31 on one GPU across runs suggests hardware, counted within a day', () => {
    const mmu =
      'Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_10 faulted @ 0x7fd7_90743000. Fault is of type ' +
      'FAULT_PDE ACCESS_TYPE_VIRT_READ';
    expect(buckets([1, 2, 3].map((pid) => event(31, mmu, pid * 60, { pid }))).every((b) => b === '31:HW_SUSPECTED')).toBe(true);
    expect(buckets([1, 2, 3].map((pid) => event(31, mmu, pid * 25 * 60, { pid }))).every((b) => b === '31:RESTART_APP')).toBe(true);
  });

  it('the latest 154 decides; earlier ones are superseded; "to None" clears what it reported for', () => {
    const nvlink = event(149, 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000)', 1);
    const sequence = [
      nvlink,
      event(154, 'GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)', 1.1),
      event(154, 'GPU recovery action changed from 0x4 (Drain and Reset) to 0x1 (GPU Reset Required)', 2),
    ];
    expect(buckets(sequence)).toEqual(['149:RESET_GPU', '154:IGNORE', '154:RESET_GPU']);
    const recovered = [...sequence, event(154, 'GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)', 3)];
    const judged = applyXidContext(recovered);
    expect(judged.map((c) => c.severity)).toEqual(['info', 'info', 'info', 'info']);
    // A fault after the "None" is new and counts.
    expect(
      buckets([...recovered, event(149, 'NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000)', 4, { pid: 3 })]).at(-1),
    ).toBe('149:RESET_GPU');
  });

  it('XID_154_EVAL follows a 154 logged with or after it', () => {
    // table-built: RLW_REMAP status 0x1 → XID_154_EVAL
    const remap = event(145, 'RLW_REMAP Nonfatal XC0 i0 Link 03 (0x00000004 0x00000001)', 1, {
      classification: classifyXid(145, 'RLW_REMAP Nonfatal XC0 i0 Link 03 (0x00000004 0x00000001)', undefined, {
        driverVersion: '575.57.08',
      }),
    });
    expect(buckets([remap])).toEqual(['145:XID_154_EVAL']);
    expect(buckets([remap, event(154, 'GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)', 1.1)])).toEqual([
      '145:RESET_GPU',
      '154:RESET_GPU',
    ]);
  });

  it('node-level events (GPU unknown) never relate', () => {
    expect(buckets([event(13, 'x', 1, { gpuKey: '' }), event(45, 'channel 0x1', 1, { gpuKey: '' })])).toEqual([
      '13:RESTART_APP',
      '45:RESTART_FM',
    ]);
  });

  it('a policy severity override survives a context change', () => {
    const view = applyXidPolicy(defaultXidCatalog, { overrides: [{ xid: 45, severity: 'warning' }] });
    const judged = applyXidContext(
      [event(13, 'x', 1), { ...event(45, 'channel 0x1', 1), classification: classifyXid(45, 'channel 0x1', view) }],
      view,
    );
    expect(judged[1]).toMatchObject({ immediateAction: 'IGNORE (sympathetic)', severity: 'warning' });
  });
});
