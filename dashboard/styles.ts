/** The dashboard's stylesheet (served as /static/dashboard.css: the pages have no inline styles). */
export const DASHBOARD_CSS = `
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 1.2em auto; padding: 0 1em; color: #222; }
nav { display: flex; gap: 1.2em; font-size: 14px; border-bottom: 1px solid #ddd; padding-bottom: 0.5em; }
nav .live, nav .offline { margin-left: auto; font-size: 12px; padding: 1px 8px; border-radius: 8px; }
nav .live { background: #e4f5e4; color: #1a6e1a; }
nav .offline { background: #fbeaea; color: #a11; }
h1 { font-size: 1.6em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
table.workloads td { border: none; padding: 0 6px 0 0; font-size: 12px; }
table.config th { width: 10em; }
tr.chosen { background: #f2f7ff; }
code { font-size: 13px; }
.facts span { display: inline-block; margin-right: 1.2em; }
.state { display: inline-block; padding: 1px 8px; border-radius: 8px; font-size: 12px; margin-right: 1em; }
.state-running { background: #e4f5e4; color: #1a6e1a; }
.state-stopped { background: #fff4d6; color: #7a5600; }
.state-done { background: #e6eefc; color: #1d4fa3; }
.state-error { background: #fbeaea; color: #a11; }
.error { color: #a11; }
.verdict-better { color: #1a6e1a; }
.verdict-worse { color: #a11; }
.status-rejected, .status-diverged, .status-invalid, .status-timeout { color: #a11; }
.status-cached { color: #777; }
a.dl { font-size: 12px; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; }
.columns svg { max-width: 100%; height: auto; }
form.compare { margin-top: 1em; }
footer { margin-top: 3em; font-size: 12px; color: #777; }
`;
