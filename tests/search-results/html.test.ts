/** search-results/html.ts: the one escaping every page of nos goes through. */
import { describe, expect, it } from 'vitest';
import { escapeHtml, html, trustedHtml } from '../../search-results/html.js';

describe('html', () => {
  it('escapes every interpolated value, whatever its type, and only Html goes in raw', () => {
    const evil = `<script>alert(1)</script>"'&`;
    const out =
      html`<td title="${evil}">${evil}</td><td>${42}</td><td>${null}${undefined}${false}</td>${[evil, html`<b>${evil}</b>`]}${trustedHtml('<svg/>')}`
        .text;
    expect(out).toBe(
      '<td title="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;</td><td>42</td><td></td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;<b>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;</b><svg/>',
    );
    expect(escapeHtml('a\u0000b\u001bc\td\ne')).toBe('a\ufffdb\ufffdc\td\ne');
  });
});
