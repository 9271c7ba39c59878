// The console's only stylesheet and script, served from the service itself (no CDN: the machine may be offline) so
// the Content-Security-Policy can forbid inline code. The script is progressive enhancement: every page works
// without it (forms post, <details> expand); it adds live refresh, local times and copy-free conveniences.
import { createHash } from 'node:crypto';

export const CSS = `
:root{--fg:#1b1f24;--muted:#4a5360;--bg:#fff;--panel:#f5f7fa;--line:#cfd6df;--link:#0a53be;--accent:#0a53be;--ok:#13683a;--okbg:#e3f4ea;--bad:#a4161a;--badbg:#fde8e8;--warn:#7a4b00;--warnbg:#fff3d6;--focus:#f0a500;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;font-size:16px;line-height:1.45;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0}
a{color:var(--link)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible,[tabindex]:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#000;color:#fff;padding:.5rem 1rem;z-index:10}
.skip:focus{left:0}
header.top{background:#10233f;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem}
header.top .brand{font-weight:700;font-size:1.1rem;color:#fff;text-decoration:none;margin-right:.5rem}
header.top nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem}
header.top nav a{color:#fff;text-decoration:none;padding:.35rem .6rem;border-radius:4px;display:inline-block}
header.top nav a:hover{background:#23406b}
header.top nav a[aria-current=page]{background:#fff;color:#10233f;font-weight:600}
header.top form{margin-left:auto}
header.top button{background:transparent;color:#fff;border:1px solid #9fb3cf}
.banner{background:var(--warnbg);color:var(--warn);padding:.4rem 1rem;border-bottom:1px solid #e6c98a;font-size:.95rem}
main{padding:1rem;max-width:1400px;margin:0 auto}
main:focus{outline:none}
h1{font-size:1.5rem;margin:.25rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:1.05rem;margin:1rem 0 .4rem}
p.lead{color:var(--muted);margin-top:-.5rem}
.muted{color:var(--muted)}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr))}
.card{border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;background:var(--panel)}
.card h2,.card h3{margin-top:0}
.figure{font-size:1.6rem;font-weight:700}
.table-wrap{overflow-x:auto;max-width:100%;border:1px solid var(--line);border-radius:6px;position:relative}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
thead th{background:var(--panel);position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
caption{text-align:left;font-weight:600;padding:.4rem .6rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.8rem;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.badge.ok{background:var(--okbg)}.badge.bad{background:var(--badbg)}.badge.warn{background:var(--warnbg)}
.tier-enterprise{color:#5b1a8a}.tier-premium{color:#0a53be}.tier-standard{color:#13683a}.tier-free{color:#4a5360}.tier-unknown{color:var(--bad)}
form.inline{display:inline}
label{font-weight:600;display:block;margin-bottom:.2rem}
.field>p.muted{margin:.1rem 0 .35rem;font-size:.92rem}
.field{margin-bottom:.75rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin-bottom:1rem}
.filters .field{margin:0}
input,select,textarea,button{font:inherit}
input[type=text],input[type=password],input[type=date],input[type=number],select,textarea{border:1px solid #7d8794;border-radius:4px;padding:.35rem .5rem;background:#fff;color:var(--fg);max-width:100%}
textarea{width:100%;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85rem;line-height:1.35}
textarea[aria-invalid=true],input[aria-invalid=true]{border:2px solid var(--bad)}
button,.button{background:var(--accent);color:#fff;border:1px solid var(--accent);border-radius:4px;padding:.4rem .9rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.75rem 0}
.notice{border-left:4px solid var(--accent);background:#eaf1fb;padding:.6rem .9rem;margin:.75rem 0;border-radius:0 4px 4px 0}
.notice.ok{border-color:var(--ok);background:var(--okbg);color:var(--fg)}
.notice.bad{border-color:var(--bad);background:var(--badbg);color:var(--fg)}
.empty{border:2px dashed var(--line);border-radius:6px;padding:1.25rem;text-align:center;color:var(--muted)}
.empty strong{color:var(--fg)}
ul.problems{margin:.25rem 0;padding-left:1.25rem}
ul.problems code{font-weight:600}
ul.lines{margin:.25rem 0;padding-left:1.1rem}
details>summary{cursor:pointer;color:var(--link)}
.pager{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:.75rem 0}
.changes{padding-left:1.4rem}
.changes>li{margin:.35rem 0}
.changes summary{color:var(--fg)}
.changes summary .changes-ticket{color:var(--link);text-decoration:underline}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.5rem 0}
dt{font-weight:600}
dd{margin:0}
.side{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}
.side>div{border:1px solid var(--line);border-radius:6px;padding:.5rem .75rem}
.chat{list-style:none;padding:0;margin:0;display:flex;flex-direction:column;gap:.4rem}
.chat li{border:1px solid var(--line);border-radius:6px;padding:.4rem .6rem;background:#fff}
.chat li.pinned{background:var(--warnbg)}
.chat .who{font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;font-size:.85rem;background:var(--panel);padding:.5rem;border-radius:4px;margin:.25rem 0}
figure{margin:0 0 1rem}
figcaption{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center}
.chart-title{font-weight:600}
.charts{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr))}
svg.chart{width:100%;height:auto;max-width:640px;display:block}
svg.chart text{font-size:13px;fill:#1b1f24;font-family:inherit}
.legend{display:inline-flex;gap:1rem;font-size:.9rem;margin:.25rem 0}
.swatch{display:inline-block;width:.9rem;height:.9rem;vertical-align:-2px;margin-right:.3rem;border-radius:2px}
.sw-median{background:#0a53be}.sw-p90{background:#9ec0f0}.sw-met{background:#13683a}.sw-breached{background:#a4161a}
.login{max-width:26rem;margin:3rem auto}
.sr-only{position:absolute;width:1px;height:1px;margin:-1px;padding:0;border:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.live-status{font-size:.9rem;color:var(--muted)}
@media (max-width:700px){
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr{border-bottom:2px solid var(--line);padding:.35rem 0}
table.stack td{border:0;padding:.15rem .5rem;text-align:left}
table.stack td::before{content:attr(data-label);display:inline-block;min-width:8.5rem;margin-right:.5rem;font-weight:600;color:var(--muted)}
table.stack caption{display:block}
table.stack td[data-label=Ticket]::before,table.stack td[data-label=Event]::before{display:block}
main{padding:.6rem}.side{grid-template-columns:1fr}header.top form{margin-left:0}th,td{padding:.35rem .4rem}h1{font-size:1.3rem}}
`;

export const JS = `
(function(){
  // Local times: the server renders UTC; show the reader's own zone.
  function localize(root){
    root.querySelectorAll('time[datetime]').forEach(function(el){
      var d=new Date(el.getAttribute('datetime'));
      if(!isNaN(d)) { el.title=el.getAttribute('datetime'); el.textContent=d.toLocaleString(undefined,{year:'numeric',month:'short',day:'numeric',hour:'2-digit',minute:'2-digit',second:el.dataset.seconds?'2-digit':undefined}); }
    });
  }
  localize(document);
  // Live regions: an element with data-live="url" is refreshed from that URL every data-every seconds.
  document.querySelectorAll('[data-live]').forEach(function(el){
    var every=Number(el.dataset.every||5)*1000, paused=false, timer=null;
    var status=document.getElementById(el.dataset.status||'');
    var btn=document.getElementById(el.dataset.toggle||'');
    function say(t){ if(status) status.textContent=t; }
    function tick(){
      if(paused||document.hidden){ schedule(); return; }
      fetch(el.dataset.live,{credentials:'same-origin',headers:{'accept':'text/html'}}).then(function(r){
        if(r.status===401||r.redirected){ say('Signed out: reload the page to sign in again.'); paused=true; return null; }
        return r.ok?r.text():null;
      }).then(function(html){
        if(html!==null&&html!==undefined){ el.innerHTML=html; localize(el); say('Updated '+new Date().toLocaleTimeString()); }
      }).catch(function(){ say('Live update failed; retrying.'); }).then(schedule);
    }
    function schedule(){ clearTimeout(timer); if(!paused) timer=setTimeout(tick,every); }
    if(btn){ btn.hidden=false; btn.addEventListener('click',function(){ paused=!paused; btn.textContent=paused?'Resume live updates':'Pause live updates'; btn.setAttribute('aria-pressed',String(paused)); say(paused?'Live updates paused.':'Live updates on.'); schedule(); }); }
    schedule();
  });
  // Confirm destructive actions (rollback, close topic) where the form asks for it.
  document.querySelectorAll('form[data-confirm]').forEach(function(f){
    f.addEventListener('submit',function(e){ if(!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  });
})();
`;

const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
/** Content hashes in the asset URLs let browsers cache them for good and still see every change. */
export const CSS_PATH = `/console-assets/console.${digest(CSS)}.css`;
export const JS_PATH = `/console-assets/console.${digest(JS)}.js`;
