"""The static part of ``report.html``: its CSS and script, inline so the page needs nothing else.

``report_html`` fills the ``@@NAME@@`` markers (escaped) and puts the rows in ``report-data.js``.
The script draws ``PAGE_SIZE`` cards at a time from ``window.REPORT_DATA``; a card's poster is
loaded lazily and its player asks only for the video's metadata. Row values are set with
``textContent`` and attribute setters only.
"""

from __future__ import annotations

PAGE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f5f6f8}
body{margin:0 auto;max-width:1280px;padding:16px 24px}
h1{font-size:20px;margin:4px 0 8px}h2{font-size:16px;margin:20px 0 8px}
.stats span{margin-right:18px;color:#4a5263}.notice{background:#fff4d6;border:1px solid #e8c35a;
padding:8px 12px;border-radius:6px}
.chip{border:1px solid #c9ced8;background:#fff;border-radius:16px;padding:4px 12px;
margin:0 6px 6px 0;cursor:pointer;font:inherit}.chip.active{outline:2px solid #3461d1}
.chip.done b{color:#1a7f37}.chip.failed b{color:#c62828}.chip.ambiguous b{color:#b26a00}
.chip.pending b{color:#5b6270}
.failure{background:#fff;border-left:4px solid #c62828;padding:6px 14px;margin:8px 0;
border-radius:4px}
.failure h3{margin:4px 0;font-size:15px}.failure small{color:#5b6270;font-weight:normal}
.hint{margin:4px 0}q{font-family:ui-monospace,monospace;font-size:13px}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:8px 0}
.controls input{padding:6px 10px;font:inherit;min-width:260px;border:1px solid #c9ced8;
border-radius:6px}
.controls select,.controls button{font:inherit;padding:5px 10px}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow:hidden;
display:flex;flex-direction:column}
.card video,.card .noposter{width:100%;aspect-ratio:16/9;background:#222;display:block}
.card .noposter{display:flex;align-items:center;justify-content:center;color:#aab}
.card .body{padding:8px 12px 10px;font-size:13px}
.card .id{font-weight:600;font-size:14px;word-break:break-all}
.badge{float:right;font-size:11px;padding:1px 8px;border-radius:10px;color:#fff;background:#5b6270}
.badge.done{background:#1a7f37}.badge.failed{background:#c62828}.badge.ambiguous{background:#b26a00}
.card dl{display:grid;grid-template-columns:auto 1fr;gap:2px 8px;margin:6px 0}
.card dt{color:#5b6270}.card dd{margin:0;word-break:break-word}
.card .error{color:#c62828;margin:4px 0}
</style></head><body>
<main>
<h1>@@TITLE@@</h1>
@@NOTICE@@
<p class="stats">@@STATS@@</p>
<div>@@CHIPS@@</div>
<h2>Failures by class</h2>
<div id="failures">@@FAILURES@@</div>
<h2>Rows</h2>
<div class="controls">
<label>status <select id="status"><option value="">all</option><option>done</option>
<option>failed</option><option>ambiguous</option><option>pending</option></select></label>
<input id="search" type="search" placeholder="search id or any variable"
aria-label="search id or any variable">
<button id="prev">&larr; previous</button><span id="pageinfo"></span>
<button id="next">next &rarr;</button>
</div>
<p id="nodata" hidden>The rows are in @@DATA@@ beside this page; keep the two files together.</p>
<div id="grid"></div>
</main>
<script src="@@DATA@@"></script>
<script>
(function(){
"use strict";
var PAGE_SIZE=48;
var data=window.REPORT_DATA;
var grid=document.getElementById("grid");
if(!data){document.getElementById("nodata").hidden=false;return;}
var rows=data.rows,columns=data.columns,shown=rows,page=0,haystacks=null;
var statusBox=document.getElementById("status"),searchBox=document.getElementById("search");
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
if(text!==undefined){e.textContent=text;e.dir="auto";}return e;}
function haystack(r){var parts=[r[0],r[2]];for(var i=0;i<r[7].length;i++)parts.push(r[7][i]);
return parts.join("\\n").toLowerCase();}
function card(r){
var c=el("div","card");c.dataset.id=r[0];c.dataset.status=r[1];
if(r[2]){var v=el("video");v.controls=true;v.preload="metadata";if(r[3])v.poster=r[3];
v.setAttribute("aria-label","video of row "+r[0]);v.src=r[2];
if(r[8]){var t=el("track");t.kind="captions";t.src=r[8];t.label="captions";
if(r[9])t.srclang=r[9];v.appendChild(t);}c.appendChild(v);}
else{c.appendChild(el("div","noposter","no video"));}
var b=el("div","body");b.appendChild(el("span","badge "+r[1],r[1]));
b.appendChild(el("div","id",r[0]));
var dl=el("dl");for(var i=0;i<columns.length;i++){if(r[7][i]===undefined||r[7][i]==="")continue;
dl.appendChild(el("dt","",columns[i]));var dd=el("dd","",r[7][i]);if(r[9])dd.lang=r[9];
dl.appendChild(dd);}
b.appendChild(dl);
if(r[4])b.appendChild(el("div","error",r[4]+": "+r[5]));
var meta=el("div","");meta.appendChild(document.createTextNode("line "+r[6]+" "));
if(r[2]){var a=el("a","","open file");a.href=r[2];meta.appendChild(a);}
link(meta,r[12],"share page");link(meta,r[13],"Pictory thumbnail");link(meta,r[14],"preview GIF");
if(r[10]||r[11])b.appendChild(el("div","told",[r[10]?r[10]+" s of video":"",
r[11]?r[11]+" AI credits":""].filter(Boolean).join(", ")));
b.appendChild(meta);c.appendChild(b);return c;}
function link(parent,url,text){if(!url)return;var a=el("a","",text);a.href=url;
a.rel="noopener noreferrer";parent.appendChild(document.createTextNode(" · "));
parent.appendChild(a);}
function draw(){
var pages=Math.max(1,Math.ceil(shown.length/PAGE_SIZE));if(page>=pages)page=pages-1;
grid.replaceChildren();var start=page*PAGE_SIZE;
var frag=document.createDocumentFragment();
for(var i=start;i<Math.min(shown.length,start+PAGE_SIZE);i++)frag.appendChild(card(shown[i]));
grid.appendChild(frag);
document.getElementById("pageinfo").textContent=shown.length+" rows, page "+(page+1)+" of "+pages;}
function apply(){
var status=statusBox.value,q=searchBox.value.trim().toLowerCase();
if(q&&!haystacks)haystacks=rows.map(haystack);
shown=[];for(var i=0;i<rows.length;i++){var r=rows[i];if(status&&r[1]!==status)continue;
if(q&&haystacks[i].indexOf(q)<0)continue;shown.push(r);}
var chips=document.querySelectorAll(".chip");
for(var j=0;j<chips.length;j++)chips[j].classList.toggle("active",chips[j].dataset.status===status);
page=0;draw();}
statusBox.addEventListener("change",apply);searchBox.addEventListener("input",apply);
var chips=document.querySelectorAll(".chip");
for(var k=0;k<chips.length;k++)chips[k].addEventListener("click",function(){
statusBox.value=statusBox.value===this.dataset.status?"":this.dataset.status;apply();});
document.getElementById("prev").addEventListener("click",function(){if(page>0){page--;draw();}});
document.getElementById("next").addEventListener("click",function(){page++;draw();});
apply();
})();
</script>
</body></html>
"""
