// Syntax this project forbids, shared by eslint.config.js and by the test that proves each
// rule fires (test/unit/lint-rules.test.ts).
export const restrictedSyntax = [
  {
    selector: 'CatchClause[body.body.length=0]',
    message: 'A catch block must handle the error (log it with context, rethrow it, or return what happened); a comment alone drops it.',
  },
  {
    selector: 'CallExpression[callee.property.name="catch"] > :function[params.length=0]',
    message: '.catch(() => …) drops the error: take it as a parameter and log it (or turn it into a result that says what happened).',
  },
  {
    selector: 'CallExpression[callee.property.name="catch"] > :function[params.0.name=/^_/]',
    message: '.catch((_err) => …) drops the error: use it (log it, or turn it into a result that says what happened).',
  },
  {
    selector: 'NewExpression[callee.name="URL"] MemberExpression[property.name="url"]:not([object.type="MetaProperty"])',
    message: 'new URL(req.url) throws on request targets such as "//": parse them with parseRequestTarget (lib/http/request-target.ts).',
  },
];
