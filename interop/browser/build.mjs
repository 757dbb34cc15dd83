// Bundles the browser page (js-libp2p and its dependencies) into dist/.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'

mkdirSync('dist', { recursive: true })
await build({
  entryPoints: ['src/page.js'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile: 'dist/page.js',
  logLevel: 'warning'
})
copyFileSync('src/index.html', 'dist/index.html')
