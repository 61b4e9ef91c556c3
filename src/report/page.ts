// The shell of kdqat's standalone HTML pages (the bench page, the run report): one file that
// opens from disk with nothing fetched. A Content-Security-Policy forbids every network or file
// load (images only as data: URIs, styles and the one script inline), so a page that tried to
// fetch something would show the attempt instead of silently depending on it; and the inline
// script counts what went wrong — script errors, failed loads, blocked loads, console errors —
// in <html data-errors="n"> (the messages in data-error-list), which a headless browser's
// --dump-dom reads (test/report/browser.ts). On load it also records where each figure was laid
// out (data-rect="x,y,w,h" in page pixels) and the page's height (data-height), so a test can
// find every figure in a screenshot.
import { esc } from '../analysis/plots.js';

export { esc };

const CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

// ES5, no dependencies; runs before anything else on the page.
const WATCH = `(function(){var h=document.documentElement;h.setAttribute('data-errors','0');
function add(m){h.setAttribute('data-errors',String(Number(h.getAttribute('data-errors'))+1));h.setAttribute('data-error-list',(h.getAttribute('data-error-list')||'')+m+'\\n');}
window.addEventListener('error',function(e){add('error: '+(e.message||(e.target&&(e.target.src||e.target.href))||'?'));},true);
window.addEventListener('unhandledrejection',function(e){add('rejection: '+e.reason);});
document.addEventListener('securitypolicyviolation',function(e){add('blocked: '+e.blockedURI+' ('+e.violatedDirective+')');});
var ce=console.error;console.error=function(){add('console.error: '+Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};
window.addEventListener('load',function(){var f=document.querySelectorAll('figure > svg');for(var i=0;i<f.length;i++){var r=f[i].getBoundingClientRect();
f[i].setAttribute('data-rect',[r.left+window.scrollX,r.top+window.scrollY,r.width,r.height].map(Math.round).join(','));}
h.setAttribute('data-height',String(h.scrollHeight));h.setAttribute('data-loaded','1');});
})();`;

const BASE_CSS = 'body{font-family:DejaVu Sans,Verdana,sans-serif;margin:24px;max-width:1500px;color:#111}' +
  'figure{margin:0}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}' +
  'code{background:#f3f3f3}';

/** A complete page: <head> with the policy, the watcher and the styles, then `body`. */
export function htmlPage(o: { title: string; body: string; css?: string }): string {
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="${CSP}">\n` +
    `<meta name="generator" content="kdqat"><title>${esc(o.title)}</title>\n<script>${WATCH}</script>\n` +
    `<style>${BASE_CSS}${o.css ?? ''}</style></head><body>\n${o.body}\n</body></html>\n`;
}
