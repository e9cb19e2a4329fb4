/**
 * The lint rules that keep errors from being dropped and request targets from being parsed
 * unsafely (eslint.rules.js, used by eslint.config.js) fire on the code they forbid and stay
 * quiet on the code that replaces it.
 */
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { repoRoot } from '../../dev/control-plane/binaries.js';

async function restricted(): Promise<unknown[]> {
  const mod = (await import(path.join(repoRoot, 'eslint.rules.js'))) as { restrictedSyntax: unknown[] };
  return mod.restrictedSyntax;
}

/** Messages of the project's no-restricted-syntax rules for `code`. */
async function lint(code: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: repoRoot,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        rules: { 'no-restricted-syntax': ['error', ...(await restricted())] },
      },
    ],
  });
  const [result] = await eslint.lintText(code, { filePath: path.join(repoRoot, 'lint-probe.ts') });
  return (result?.messages ?? []).map((m) => m.message);
}

describe('lint rules against dropped errors and unsafe request parsing', () => {
  it.each([
    ['a catch block holding only a comment', 'try { f(); } catch (err) {\n  // ignore\n}', 'A catch block must handle the error'],
    ['an empty optional-binding catch', 'try { f(); } catch {\n  // not listening yet\n}', 'A catch block must handle the error'],
    ['.catch(() => undefined)', 'void p.catch(() => undefined);', '.catch(() => …) drops the error'],
    ['.catch(async () => {})', 'void p.catch(async () => { await g(); });', '.catch(() => …) drops the error'],
    ['.catch(function () {})', 'void p.catch(function () { return 1; });', '.catch(() => …) drops the error'],
    ['.catch((_err) => …)', 'void p.catch((_err) => 0);', '.catch((_err) => …) drops the error'],
    ['new URL(req.url, base)', "const u = new URL(req.url ?? '/', 'http://x');", 'new URL(req.url) throws'],
    ['new URL(request.url)', 'const u = new URL(request.url);', 'new URL(req.url) throws'],
  ])('forbids %s', async (_what, code, message) => {
    expect(await lint(code)).toEqual([expect.stringContaining(message)]);
  });

  it.each([
    ['a catch that logs', "try { f(); } catch (err) { log.warn('f failed', errorFields(err)); }"],
    ['a catch that returns a result', 'try { f(); } catch { return fallback; }'],
    ['.catch((err) => log(err))', 'void p.catch((err: unknown) => log(err));'],
    ['new URL of a module path', "const u = new URL('../x.json', import.meta.url);"],
    ['new URL of a configured server', 'const u = new URL(path, cluster.server);'],
  ])('allows %s', async (_what, code) => {
    expect(await lint(code)).toEqual([]);
  });
});
