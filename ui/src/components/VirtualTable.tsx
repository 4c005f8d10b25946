import type { ComponentChildren } from "preact";
import { useMemo, useState } from "preact/hooks";
import { type Provenance, PROVENANCE_TEXT } from "./Provenance";

export interface Column<R> {
  key: string;
  label: string;
  width: string;
  render: (row: R) => ComponentChildren;
  sort?: (row: R) => number | string;
  align?: "right";
  /** Marks the column's header when its numbers are projected or a proxy. */
  provenance?: Provenance;
}

/**
 * A sortable, filterable table that renders only the visible rows (plus a small overscan), so tens of
 * thousands of rows scroll smoothly. Selection: click, ctrl/cmd-click to toggle, shift-click for a range.
 */
export function VirtualTable<R>(props: {
  id: string;
  rows: R[];
  columns: Column<R>[];
  rowKey: (row: R) => string;
  filterText: (row: R) => string;
  height?: number;
  selected?: Set<string>;
  onSelect?: (keys: Set<string>) => void;
  onActivate?: (row: R) => void;
  toolbar?: ComponentChildren;
}) {
  const rowH = 26;
  const height = props.height ?? 420;
  const [scrollTop, setScrollTop] = useState(0);
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 } | null>(null);
  const [anchor, setAnchor] = useState<number | null>(null);

  const view = useMemo(() => {
    const f = filter.trim().toLowerCase();
    let rows = f ? props.rows.filter((r) => props.filterText(r).toLowerCase().includes(f)) : props.rows.slice();
    const col = sort && props.columns.find((c) => c.key === sort.key);
    if (sort && col?.sort) {
      const get = col.sort;
      rows = rows
        .map((r) => [get(r), r] as const)
        .sort((a, b) => (a[0] < b[0] ? -sort.dir : a[0] > b[0] ? sort.dir : 0))
        .map(([, r]) => r);
    }
    return rows;
  }, [props.rows, filter, sort, props.columns, props.filterText]);

  const first = Math.max(0, Math.floor(scrollTop / rowH) - 8);
  const last = Math.min(view.length, Math.ceil((scrollTop + height) / rowH) + 8);
  const template = props.columns.map((c) => c.width).join(" ");

  const click = (i: number, row: R, e: MouseEvent) => {
    props.onActivate?.(row);
    if (!props.onSelect) return;
    const key = props.rowKey(row);
    let next = new Set(props.selected ?? []);
    if (e.shiftKey && anchor !== null) {
      const [a, b] = anchor < i ? [anchor, i] : [i, anchor];
      for (let k = a; k <= b; k++) {
        const r = view[k];
        if (r) next.add(props.rowKey(r));
      }
    } else if (e.ctrlKey || e.metaKey) {
      if (next.has(key)) next.delete(key);
      else next.add(key);
      setAnchor(i);
    } else {
      next = new Set([key]);
      setAnchor(i);
    }
    props.onSelect(next);
  };

  return (
    <div class="vtable" id={props.id}>
      <div class="vtable-bar">
        <input
          class="filter"
          type="search"
          placeholder="filter (name, role, dtype, action…)"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          data-testid={`${props.id}-filter`}
        />
        <span class="muted" data-testid={`${props.id}-count`}>
          {view.length === props.rows.length ? `${view.length} rows` : `${view.length} of ${props.rows.length} rows`}
        </span>
        {props.toolbar}
      </div>
      <div class="vtable-head" style={{ gridTemplateColumns: template }}>
        {props.columns.map((c) => (
          <button
            key={c.key}
            class={`th ${c.align === "right" ? "right" : ""}`}
            disabled={!c.sort}
            onClick={() => setSort((s) => (s && s.key === c.key ? { key: c.key, dir: s.dir === 1 ? -1 : 1 } : { key: c.key, dir: 1 }))}
            title={c.provenance ? PROVENANCE_TEXT[c.provenance] : undefined}
          >
            {c.provenance ? (
              <span class={`q ${c.provenance}`} data-provenance={c.provenance}>
                {c.label}
              </span>
            ) : (
              c.label
            )}
            {sort?.key === c.key ? (sort.dir === 1 ? " ▲" : " ▼") : ""}
          </button>
        ))}
      </div>
      <div class="vtable-body" style={{ height: `${height}px` }} onScroll={(e) => setScrollTop((e.target as HTMLElement).scrollTop)}>
        <div style={{ height: `${view.length * rowH}px`, position: "relative" }}>
          {view.slice(first, last).map((row, j) => {
            const i = first + j;
            const key = props.rowKey(row);
            return (
              <div
                key={key}
                class={`tr ${props.selected?.has(key) ? "sel" : ""}`}
                data-row={key}
                style={{ top: `${i * rowH}px`, height: `${rowH}px`, gridTemplateColumns: template }}
                onClick={(e) => click(i, row, e)}
              >
                {props.columns.map((c) => (
                  <div key={c.key} class={`td ${c.align === "right" ? "right" : ""}`}>
                    {c.render(row)}
                  </div>
                ))}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
