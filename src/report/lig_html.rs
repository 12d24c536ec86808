//! The `gradpath lig --html` page: one self-contained file (no network), a layer slider, the
//! direct z → z map and the composed ATT × MLP map side by side as source × target heatmaps
//! (rows = source i, columns = target j, labelled on both axes), their per-column L2 and
//! Pearson, and the strongest off-diagonal contributions of every layer.

use crate::attribution::lig::LigReport;
use serde_json::json;

/// Renders the page for a report.
pub fn render(r: &LigReport) -> String {
    let layers: Vec<serde_json::Value> = r
        .layers
        .values()
        .map(|l| {
            json!({
                "layer": l.layer_idx,
                "direct": l.z2z.as_ref().map(|z| &z.matrix),
                "direct_baseline": l.z2z.as_ref().map(|z| z.baseline),
                "composed": l.composition.as_ref().map(|c| &c.matrix),
                "diagnostic": l.composition.as_ref().and_then(|c| c.diagnostic.as_ref()),
            })
        })
        .collect();
    let data = json!({
        "tokens": r.tokens,
        "text": r.text,
        "model": r.model,
        "config": r.config,
        "layers": layers,
    });
    // `</` cannot end the script element early.
    let data = data.to_string().replace("</", "<\\/");
    PAGE.replace("__DATA__", &data)
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gradpath · LIG</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} .maps{display:flex;gap:2em;flex-wrap:wrap}
table.hm{border-collapse:collapse;font-size:11px}
table.hm td,table.hm th{border:1px solid #eee;min-width:2.6em;height:1.8em;text-align:center}
table.hm th{background:#fafafa;font-weight:normal}
th.corner{font-size:10px;color:#555}
.muted{color:#666;font-size:.9em} #flow li{font-family:monospace}
</style></head><body>
<h1>LIG: token-to-token flow inside each layer</h1>
<p class="muted" id="meta"></p>
<p><label>layer <input type="range" id="layer" min="0" value="0"> <b id="lname"></b></label></p>
<p class="muted">Each heatmap: <b>row = source token i</b>, <b>column = target token j</b>; cell = contribution of source i to target j
(red positive, blue negative, scaled per map). Columns sum to ‖F_j(x) − F_j(x′)‖ for the direct map.</p>
<div class="maps"><div><h3>direct z → z <span id="db" class="muted"></span></h3><div id="direct"></div></div>
<div><h3>composed Σ_h ATT·MLP</h3><div id="composed"></div></div></div>
<h3>per-column consistency (direct vs composed)</h3><div id="diag" class="muted"></div>
<h3>strongest off-diagonal contributions, all layers</h3><ol id="flow"></ol>
<script id="lig-data" type="application/json">__DATA__</script>
<script>
const D=JSON.parse(document.getElementById('lig-data').textContent);
const T=D.tokens, L=D.layers;
document.getElementById('meta').textContent=`${D.model} · "${D.text}" · ${D.config.method} × ${D.config.num_steps} · baselines layer=${D.config.baseline_layer}, att=${D.config.baseline_att}, mlp=${D.config.baseline_mlp}`;
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function heat(m){
  if(!m) return '<p class="muted">not computed</p>';
  let mx=0; m.forEach(r=>r.forEach(v=>mx=Math.max(mx,Math.abs(v)))); mx=mx||1;
  let h='<table class="hm"><tr><th class="corner">source ↓ / target →</th>'+T.map(t=>`<th>${esc(t)}</th>`).join('')+'</tr>';
  m.forEach((r,i)=>{h+=`<tr><th>${esc(T[i])}</th>`+r.map((v,j)=>{const a=Math.abs(v)/mx;
    const c=v>=0?`rgba(220,50,40,${a})`:`rgba(40,90,220,${a})`;
    return `<td style="background:${c}" title="${esc(T[i])} → ${esc(T[j])}: ${v.toExponential(3)}">${Math.abs(v)>=0.005*mx?v.toFixed(2):''}</td>`}).join('')+'</tr>'});
  return h+'</table>';
}
function show(k){
  const l=L[k]; document.getElementById('lname').textContent=l.layer;
  document.getElementById('db').textContent=l.direct_baseline?`(${l.direct_baseline})`:'';
  document.getElementById('direct').innerHTML=heat(l.direct);
  document.getElementById('composed').innerHTML=heat(l.composed);
  const d=l.diagnostic;
  document.getElementById('diag').innerHTML=d?`L2 mean ${d.l2_mean.toFixed(4)} ± ${d.l2_std.toFixed(4)}, Pearson mean ${d.pearson_mean.toFixed(4)} ± ${d.pearson_std.toFixed(4)} over ${d.n_columns} columns<br>`+
    d.l2.map((v,j)=>v===null?'':`${esc(T[j])}: L2 ${v.toFixed(3)}, r ${d.pearson[j].toFixed(3)}`).filter(s=>s).join(' · '):'needs --granularity all (layer, att and mlp)';
}
const s=document.getElementById('layer'); s.max=Math.max(0,L.length-1); s.oninput=()=>show(+s.value); if(L.length) show(0);
const best=[]; L.forEach(l=>{if(l.direct) l.direct.forEach((r,i)=>r.forEach((v,j)=>{if(i!==j) best.push([Math.abs(v),v,l.layer,i,j])}))});
best.sort((a,b)=>b[0]-a[0]);
document.getElementById('flow').innerHTML=best.slice(0,15).map(([_,v,l,i,j])=>`<li>layer ${l}: ${esc(T[i])} → ${esc(T[j])}  ${v.toFixed(4)}</li>`).join('');
</script></body></html>
"#;
