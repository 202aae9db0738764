"""The live page: one HTML document, its CSS and script inline (no CDN, no build step, nothing
from elsewhere: it works offline), polling ``api/state`` every ``@@REFRESH_MS@@`` ms.

Every value reaches the page through ``textContent`` and attribute setters, never as markup, and
carries ``dir="auto"`` (a name in Arabic or Hebrew reads right to left). The numbers that change
are in an ``aria-live`` region that announces the summary line only, politely.
``server`` serves it with a Content-Security-Policy naming the inline script and style by their
hashes (``SCRIPT``, ``STYLE``), so the page can load nothing but from its own server.
"""

from __future__ import annotations

STYLE = """
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f5f6f8}
body{margin:0 auto;max-width:1280px;padding:16px 24px}
h1{font-size:20px;margin:4px 0 8px}h2{font-size:16px;margin:22px 0 8px}
.muted{color:#4a5263}.notice{background:#fff4d6;border:1px solid #8a6500;padding:8px 12px;
border-radius:6px}
.notice code{background:#fff;padding:1px 4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);padding:10px 14px;
min-width:170px}
.card .big{font-size:22px;font-weight:600}
table{border-collapse:collapse;background:#fff}th,td{text-align:left;padding:4px 10px;
border-bottom:1px solid #dde1e8;vertical-align:top}
.failure{background:#fff;border-left:4px solid #b71c1c;padding:6px 14px;margin:8px 0;
border-radius:4px}
.failure h3{margin:4px 0;font-size:15px}
#posters{display:flex;flex-wrap:wrap;gap:10px}#posters figure{margin:0;background:#fff;
padding:6px;border-radius:6px}#posters img{display:block;width:200px;height:auto}
#posters figcaption{font-size:13px;margin-top:4px}
a{color:#1f4fbf}
"""

SCRIPT = """
(function(){
"use strict";
var REFRESH_MS=parseInt(document.body.dataset.refreshMs,10)||2000;
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined&&text!==null)
e.textContent=String(text);if(cls)e.className=cls;e.dir="auto";return e;}
function put(id,nodes){var box=document.getElementById(id);box.replaceChildren.apply(box,nodes);}
function num(v,d){return v===null||v===undefined?"not measured":Number(v).toFixed(d);}
function clock(ts){return ts?new Date(ts*1000).toLocaleTimeString():"?";}
function card(label,value,note,key){var c=el("div",null,"card");c.dataset.key=key;
c.appendChild(el("div",label,"muted"));var b=el("div",value,"big");b.dataset.value=key;
c.appendChild(b);if(note)c.appendChild(el("div",note,"muted"));return c;}
function draw(v){
document.title="orchestrator live: "+v.title;
document.getElementById("title").textContent="orchestrator live: "+v.title;
document.getElementById("where").textContent=v.where;
document.getElementById("state").textContent=v.state_line;
var settled=v.done+" of "+v.total+" done";
document.getElementById("summary").textContent=settled+(v.eta?", about "+v.eta+" left":"");
var rate=v.rate,limit=rate.limit_per_s!==null?rate.limit_per_s:rate.configured_per_s;
var cards=[card("rows done",v.done+" / "+v.total,null,"done"),
card("requests per second",num(rate.measured_per_s,2),"limit "+num(limit,1)+
(rate.measured_per_s===null&&v.shared?" (each worker measures its own)":""),"rate"),
card("renders in flight",v.renders.in_flight,"cap "+(v.renders.cap===null?"?":v.renders.cap)+
(v.shared?" per account":""),"renders"),
card("time left",v.eta||"unknown",v.eta?(v.rows_per_min.toFixed(1)+" rows/min over the last "+
Math.round(v.eta_window_min)+" min"):(v.live?"measured once two rows are done":
"nothing is running"),"eta")];
put("cards",cards);
var rows=[];for(var i=0;i<v.stages.length;i++){var tr=el("tr");tr.dataset.stage=v.stages[i][0];
tr.appendChild(el("th",v.stages[i][0]));tr.firstChild.scope="row";
tr.appendChild(el("td",v.stages[i][1]));rows.push(tr);}
put("stages",rows);
var canary=document.getElementById("canary");
if(v.canary&&v.canary.waiting){canary.hidden=false;
var p=el("p","The canary ("+v.canary.rows+" rows) waits for approval: look at its videos, then "+
"render the rest with ");p.appendChild(el("code",v.canary.approve));canary.replaceChildren(p);}
else{canary.hidden=true;canary.replaceChildren();}
var workers=document.getElementById("workers-section");
if(v.workers){workers.hidden=false;var wr=[];
if(!v.workers.length){var none=el("tr");var td=el("td","no live worker");td.colSpan=4;
none.appendChild(td);wr.push(none);}
for(var w=0;w<v.workers.length;w++){var x=v.workers[w],row=el("tr");row.dataset.worker=x.worker;
row.appendChild(el("td",x.worker));row.appendChild(el("td",x.account||"?"));
row.appendChild(el("td",x.rows));row.appendChild(el("td",clock(x.last_heartbeat)));wr.push(row);}
put("workers",wr);}else{workers.hidden=true;}
var groups=[];for(var g=0;g<v.failures.length;g++){var f=v.failures[g];
var s=el("section",null,"failure");s.dataset.kind=f.kind;
s.appendChild(el("h3",f.kind+" ("+f.count+" row"+(f.count===1?"":"s")+")"));
s.appendChild(el("p","What to do: "+f.hint));var ul=el("ul");
for(var m=0;m<f.messages.length;m++)ul.appendChild(el("li",(f.messages[m][0]||"(no message)")+
" \\u00d7 "+f.messages[m][1]));s.appendChild(ul);var ex=el("p","Rows: ");
for(var r=0;r<f.rows.length;r++){var a=el("a",f.rows[r]);
a.href="#row-"+encodeURIComponent(f.rows[r]);
ex.appendChild(a);if(r<f.rows.length-1)ex.appendChild(document.createTextNode(", "));}
s.appendChild(ex);groups.push(s);}
if(!groups.length)groups.push(el("p","No failures."));
put("failures",groups);
var fr=[];for(var k=0;k<v.failed_rows.length;k++){var y=v.failed_rows[k],t=el("tr");
t.id="row-"+encodeURIComponent(y.id);t.appendChild(el("td",y.id));t.appendChild(el("td",y.line));
t.appendChild(el("td",y.status));t.appendChild(el("td",y.kind));t.appendChild(el("td",y.message));
fr.push(t);}
document.getElementById("failed-rows-section").hidden=!fr.length;put("failed-rows",fr);
var ps=[];for(var q=0;q<v.posters.length;q++){var fig=el("figure"),img=el("img");
img.src=v.posters[q].poster;img.alt="poster frame of row "+v.posters[q].id;img.loading="lazy";
fig.appendChild(img);fig.appendChild(el("figcaption",v.posters[q].id));ps.push(fig);}
if(!ps.length)ps.push(el("p","No finished video yet (or its folder is not known here)."));
put("posters",ps);
var next=document.getElementById("next");next.hidden=!v.next;
if(v.next){next.replaceChildren(document.createTextNode("Next: "),el("code",v.next));}
document.getElementById("updated").textContent="read at "+clock(v.read_at);
document.body.dataset.ready="1";}
function poll(){fetch("api/state",{cache:"no-store",credentials:"same-origin"}).then(function(r){
if(!r.ok)return r.json().then(function(b){throw new Error(b.error||"HTTP "+r.status);},
function(){throw new Error("HTTP "+r.status);});return r.json();}).then(function(v){
document.getElementById("error").hidden=true;draw(v);}).catch(function(e){
var box=document.getElementById("error");box.hidden=false;
box.textContent="Cannot read the batch just now ("+e.message+"); trying again.";}).then(function(){
setTimeout(poll,REFRESH_MS);});}
poll();
})();
"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orchestrator live</title>
<style>@@STYLE@@</style></head>
<body data-refresh-ms="@@REFRESH_MS@@">
<header><h1 id="title">orchestrator live</h1>
<p class="muted"><span id="where"></span> · <span id="state"></span> ·
<span id="updated"></span></p></header>
<main>
<p id="error" class="notice" role="alert" hidden></p>
<p id="summary" aria-live="polite"></p>
<div id="canary" class="notice" hidden></div>
<div id="cards" class="cards"></div>
<h2 id="stages-title">Rows by state</h2>
<table aria-labelledby="stages-title"><thead><tr><th scope="col">state</th>
<th scope="col">rows</th></tr></thead><tbody id="stages"></tbody></table>
<section id="workers-section" aria-labelledby="workers-title" hidden>
<h2 id="workers-title">Workers</h2>
<table aria-labelledby="workers-title"><thead><tr><th scope="col">worker</th>
<th scope="col">account</th><th scope="col">rows held</th>
<th scope="col">last heartbeat</th></tr></thead><tbody id="workers"></tbody></table></section>
<h2>Failures by cause</h2>
<div id="failures"></div>
<section id="failed-rows-section" aria-labelledby="failed-rows-title" hidden>
<h2 id="failed-rows-title">Rows that failed</h2>
<table aria-labelledby="failed-rows-title"><thead><tr><th scope="col">row</th>
<th scope="col">line</th><th scope="col">state</th><th scope="col">cause</th>
<th scope="col">message</th></tr></thead><tbody id="failed-rows"></tbody></table></section>
<h2>Newest videos</h2>
<div id="posters"></div>
<p id="next" hidden></p>
</main>
<script>@@SCRIPT@@</script>
</body></html>
"""


def live_page(refresh_s: float) -> str:
    """The page, polling every ``refresh_s`` seconds."""
    return (
        TEMPLATE.replace("@@STYLE@@", STYLE)
        .replace("@@SCRIPT@@", SCRIPT)
        .replace("@@REFRESH_MS@@", str(max(100, round(refresh_s * 1000))))
    )
