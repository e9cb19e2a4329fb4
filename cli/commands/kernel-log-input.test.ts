import { parseKernelLine } from '../../agent/xid/parser.js';
import { decodeKernelLogLine, MAX_KERNEL_LOG_LINE, type KernelLogLine } from './kernel-log-input.js';

// A real line (test/fixtures/xid/sample-dmesg.log); every sample below carries it.
const XID = "NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.";
// 2025-02-23 16:24:18.116531 CET.
const REALTIME_US = '1740324258116531';
const UTC = '2025-02-23T15:24:18.116Z';

interface Case {
  readonly line: string;
  /** Defaults to the line itself (plain-text formats). */
  readonly text?: string;
  readonly timestamp?: string;
  readonly uptimeSeconds?: number;
}

/** `dmesg -T` as each locale prints `%a %b %e %H:%M:%S %Y` (glibc), with the time it stands for. */
const LOCALIZED_CTIME: readonly (readonly [string, string, string | null])[] = [
  ['English', '[Sun Feb 23 16:24:18 2025]', '2025-02-23T16:24:18'],
  ['German', '[Di Mär  4 10:00:00 2025]', '2025-03-04T10:00:00'],
  ['German', '[Do Mai  1 10:00:00 2025]', '2025-05-01T10:00:00'],
  ['German', '[Di Dez  9 23:59:59 2025]', '2025-12-09T23:59:59'],
  ['French', '[dim. janv.  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['French', '[jeu. août 14 10:00:00 2025]', '2025-08-14T10:00:00'],
  ['French', '[mar. déc.  9 10:00:00 2025]', '2025-12-09T10:00:00'],
  ['Spanish', '[dom ene  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['Spanish', '[sáb oct 11 10:00:00 2025]', '2025-10-11T10:00:00'],
  ['Italian', '[dom gen  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['Italian', '[gio giu 12 10:00:00 2025]', '2025-06-12T10:00:00'],
  ['Portuguese', '[qui mai  1 10:00:00 2025]', '2025-05-01T10:00:00'],
  ['Portuguese', '[sáb out 11 10:00:00 2025]', '2025-10-11T10:00:00'],
  ['Dutch', '[di mrt  4 10:00:00 2025]', '2025-03-04T10:00:00'],
  ['Swedish', '[tor maj  1 10:00:00 2025]', '2025-05-01T10:00:00'],
  ['Norwegian', '[ti. des.  9 10:00:00 2025]', '2025-12-09T10:00:00'],
  ['Russian', '[Вс янв  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['Russian', '[Чт мая  1 10:00:00 2025]', '2025-05-01T10:00:00'],
  ['Russian', '[Вт сен 30 10:00:00 2025]', '2025-09-30T10:00:00'],
  ['Japanese', '[日  1月  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['Japanese', '[火 12月  9 10:00:00 2025]', '2025-12-09T10:00:00'],
  ['Chinese', '[日 1月  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  ['Korean', '[일  1월  5 10:00:00 2025]', '2025-01-05T10:00:00'],
  // Month names not in the table: the time is left unset, never guessed.
  ['Polish', '[nie sty  5 10:00:00 2025]', null],
  ['Czech', '[ne led  5 10:00:00 2025]', null],
  ['Turkish', '[Paz Oca  5 10:00:00 2025]', null],
  ['Greek', '[Κυρ Ιαν  5 10:00:00 2025]', null],
  ['Vietnamese', '[CN Thg 1  5 10:00:00 2025]', null],
];

const journal = (fields: Record<string, unknown>): string =>
  JSON.stringify({
    __REALTIME_TIMESTAMP: REALTIME_US,
    _SOURCE_MONOTONIC_TIMESTAMP: '3407548779',
    _TRANSPORT: 'kernel',
    PRIORITY: '4',
    ...fields,
  });
// `name=café` written by a process whose name is Latin-1, not UTF-8: journalctl prints MESSAGE as bytes.
const LATIN1_MESSAGE = [
  ...Buffer.from('NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=caf', 'latin1'),
  0xe9,
  ...Buffer.from(', Graphics SM Warp Exception'),
];

const CASES: readonly (readonly [string, Case])[] = [
  ['raw dmesg', { line: `[ 3407.548779] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['dmesg -r', { line: `<4>[ 3407.548779] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['dmesg -d', { line: `[ 3407.548779 <    0.000003>] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['dmesg --decode', { line: `kern  :warn  : [ 3407.548779] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['dmesg --decode -T', { line: `kern  :warn  : [Sun Feb 23 16:24:18 2025] ${XID}`, timestamp: '2025-02-23T16:24:18' }],
  ['dmesg --time-format iso', { line: `2025-02-23T16:24:18,116531+01:00 ${XID}`, timestamp: UTC }],
  ...LOCALIZED_CTIME.map(([lang, head, time]): [string, Case] => [
    `dmesg -T ${lang} ${head}`,
    { line: `${head} ${XID}`, ...(time === null ? {} : { timestamp: time }) },
  ]),
  // The uptime after `kernel:` is the prefix's (parseLineTime), not the format's.
  ['syslog', { line: `Feb 23 16:24:18 rescue kernel: [ 3407.548779] ${XID}` }],
  ['journalctl -o short, German', { line: `Okt 06 17:59:27 balrog kernel: ${XID}` }],
  ['journalctl -o short-precise', { line: `Feb 23 16:24:18.116531 rescue kernel: ${XID}` }],
  ['journalctl -o short-iso', { line: `2025-02-23T16:24:18+0100 rescue kernel: ${XID}`, timestamp: '2025-02-23T15:24:18.000Z' }],
  ['journalctl -o short-iso-precise', { line: `2025-02-23T16:24:18.116531+01:00 rescue kernel: ${XID}`, timestamp: UTC }],
  ['journalctl -o short-monotonic', { line: `[ 3407.548779] rescue kernel: ${XID}`, uptimeSeconds: 3407.548779 }],
  ['journalctl -o short-delta', { line: `[ 3407.548779 <    0.000003>] rescue kernel: ${XID}`, uptimeSeconds: 3407.548779 }],
  ['journalctl -o short-unix', { line: `1740324258.116531 rescue kernel: ${XID}`, timestamp: UTC }],
  ['journalctl -o json', { line: journal({ MESSAGE: XID }), text: XID, timestamp: UTC, uptimeSeconds: 3407.548779 }],
  ['journalctl -o json-seq', { line: `\u001e${journal({ MESSAGE: XID })}`, text: XID, timestamp: UTC, uptimeSeconds: 3407.548779 }],
  [
    'journalctl -o json, MESSAGE as bytes',
    {
      line: journal({ MESSAGE: LATIN1_MESSAGE }),
      text: 'NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=caf\uFFFD, Graphics SM Warp Exception',
      timestamp: UTC,
      uptimeSeconds: 3407.548779,
    },
  ],
  ['journald JSON without times', { line: JSON.stringify({ MESSAGE: XID }), text: XID }],
  ['/dev/kmsg', { line: `4,1234,3407548779,-;${XID}`, text: XID, uptimeSeconds: 3407.548779 }],
  ['/dev/kmsg with caller', { line: `4,1234,3407548779,-,caller=C12;${XID}`, text: XID, uptimeSeconds: 3407.548779 }],
  [
    '/dev/kmsg with \\xNN escapes',
    {
      line:
        String.raw`4,1235,3407548790,-;NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=pyth\xc3\xb6n, Graphics Exception ` +
        String.raw`at \x5cdev\x5cnvidia0\x0aESR 0x51e730=0x0`,
      text: 'NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=pythön, Graphics Exception at \\dev\\nvidia0\nESR 0x51e730=0x0',
      uptimeSeconds: 3407.54879,
    },
  ],
  ['a malformed kmsg header (read as text)', { line: `4,1234,abc,-;${XID}` }],
  ['indented syslog line', { line: '     Mar 21 21:42:01 kernel: NVRM: GPU0 _kgspRpcRecvPoll: GSP RM heartbeat timed out' }],
  ['CRLF', { line: `[ 3407.548779] ${XID}\r`, text: `[ 3407.548779] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['BOM', { line: `\uFEFF[ 3407.548779] ${XID}`, text: `[ 3407.548779] ${XID}`, uptimeSeconds: 3407.548779 }],
  ['BOM before a kmsg record', { line: `\uFEFF4,1234,3407548779,-;${XID}\r`, text: XID, uptimeSeconds: 3407.548779 }],
  ['BOM before JSON', { line: `\uFEFF${journal({ MESSAGE: XID })}\r`, text: XID, timestamp: UTC, uptimeSeconds: 3407.548779 }],
  ['NUL padding', { line: `\0\0\0\0Feb 23 16:24:18 rescue kernel: ${XID}`, text: `Feb 23 16:24:18 rescue kernel: ${XID}` }],
];

describe('decodeKernelLogLine', () => {
  it.each(CASES)('%s', (_format, c) => {
    const expected: KernelLogLine = { text: c.text ?? c.line, timestamp: c.timestamp ?? null, uptimeSeconds: c.uptimeSeconds ?? null };
    expect(decodeKernelLogLine(c.line)).toEqual(expected);
  });

  it.each(CASES.filter(([, c]) => (c.text ?? c.line).includes('NVRM: Xid')))('leaves the XID findable: %s', (_format, c) => {
    const decoded = decodeKernelLogLine(c.line);
    expect(decoded !== null && 'text' in decoded ? parseKernelLine(decoded.text)?.kind : null).toBe('xid');
  });

  it.each([
    ['a kmsg dictionary line', ' SUBSYSTEM=pci'],
    ['a kmsg dictionary line', ' DEVICE=+pci:0000:3b:00.0'],
    ['a blank line', ''],
    ['a blank line', ' \t '],
    ['a blank CRLF line', '\r'],
    ['a journald entry whose MESSAGE was too large to print', journal({ MESSAGE: null })],
    ['a journald entry without MESSAGE', journal({})],
    ['a MESSAGE that is neither text nor bytes', journal({ MESSAGE: [1, 2, 300] })],
  ])('returns null for %s (%j)', (_what, line) => {
    expect(decodeKernelLogLine(line)).toBeNull();
  });

  it.each([
    ['torn', `{"__REALTIME_TIMESTAMP":"${REALTIME_US}","MESSAGE":"NVRM: Xid (PCI:0000:91:00): 79, pid=`],
    ['not JSON', '{ MESSAGE: NVRM }'],
    ['torn json-seq', '\u001e{"MESSAGE":'],
  ])('skips a malformed JSON line (%s)', (_what, line) => {
    expect(decodeKernelLogLine(line)).toEqual({ skipped: 'malformedJson' });
  });

  it('skips a line over the size limit and reads one at it', () => {
    expect(decodeKernelLogLine(`${XID}${'x'.repeat(MAX_KERNEL_LOG_LINE)}`)).toEqual({ skipped: 'oversize' });
    const atLimit = `${XID} ${'x'.repeat(MAX_KERNEL_LOG_LINE - XID.length - 1)}`;
    expect(decodeKernelLogLine(atLimit)).toMatchObject({ text: atLimit });
  });
});
