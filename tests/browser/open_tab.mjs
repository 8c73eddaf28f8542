// Keeps one headless chromium tab open on the console's overview until killed (or --seconds
// pass): `./lantern bench --browser-tab` measures the API with it open (tools/bench.py).
//   node open_tab.mjs --port P --modules build/npm [--path /#/] [--seconds 600]
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: {
  port: { type: 'string' }, modules: { type: 'string' }, path: { type: 'string', default: '/#/' },
  seconds: { type: 'string', default: '600' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
} });
const require = createRequire(path.join(path.resolve(args.modules), 'package.json'));
const { chromium } = require('playwright-core');
const browser = await chromium.launch({ executablePath: args.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'] });
// API requests the page made, reported when the tab closes (bench.py prints it).
let apiRequests = 0;
const stop = async () => {
  console.log(`open_tab.mjs: ${apiRequests} API requests`);
  await browser.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const page = await browser.newPage();
page.on('request', (request) => { if (new URL(request.url()).pathname.startsWith('/api/')) apiRequests += 1; });
await page.goto(`http://127.0.0.1:${args.port}${args.path}`);
console.log('open_tab.mjs: tab open');
setTimeout(stop, Number(args.seconds) * 1000);
