// #/actions: the actions of each pack, with their parameters.

import { api } from "./api.js";
import { badge, errorBox, field, h, replace, select, table } from "./dom.js";

function shownDefault(spec) {
  if (spec.secret) return spec.default === undefined || spec.default === null ? "—" : "******";
  if (spec.default === undefined || spec.default === null) return "—";
  return typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
}

function parameterTable(action) {
  const entries = Object.entries(action.parameters || {}).sort(
    ([a, x], [b, y]) => Number(!!y.required) - Number(!!x.required) || a.localeCompare(b),
  );
  return table(
    `Parameters of ${action.ref}`,
    ["Name", "Type", "Required", "Default", "Description"],
    entries.map(([name, spec]) => [
      h("code", null, name),
      spec.type ?? "—",
      spec.required ? "yes" : "no",
      [shownDefault(spec), spec.secret ? h("span", { class: "tag" }, " secret") : null],
      spec.description ?? "",
    ]),
    "No parameters.",
  );
}

function actionCard(action) {
  return h(
    "details",
    { class: "action card" },
    h(
      "summary",
      null,
      h("code", null, action.ref),
      " ",
      action.enabled === false ? badge("disabled") : null,
      h("span", { class: "muted" }, ` ${action.runner_type ?? ""}`),
    ),
    action.description ? h("p", null, action.description) : null,
    parameterTable(action),
  );
}

export async function render(root, context) {
  const list = h("div", { class: "results" });
  const picker = h("div");
  replace(root, h("h1", null, "Actions"), picker, list);
  const chosen = context.query.get("pack") || "";
  try {
    const packs = (await api("/ui/api/packs")).items || [];
    if (!context.alive()) return;
    const choice = select(
      "pack",
      [
        ["", "All packs"],
        ...packs.map((pack) => [
          pack.ref ?? pack.name,
          `${pack.ref ?? pack.name}${pack.version ? ` ${pack.version}` : ""}`,
        ]),
      ],
      chosen,
    );
    choice.addEventListener("change", () =>
      context.navigate("actions", choice.value ? { pack: choice.value } : undefined),
    );
    replace(
      picker,
      h(
        "form",
        {
          class: "filters",
          "aria-label": "Choose a pack",
          onsubmit: (event) => event.preventDefault(),
        },
        field("Pack", choice),
      ),
    );
    const actions = (await api("/ui/api/actions", { query: { pack: chosen } })).items || [];
    if (!context.alive()) return;
    const byPack = new Map();
    for (const action of actions) {
      if (!byPack.has(action.pack)) byPack.set(action.pack, []);
      byPack.get(action.pack).push(action);
    }
    const sections = [...byPack.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([pack, items]) => {
        const description = packs.find((p) => (p.ref ?? p.name) === pack)?.description;
        return h(
          "section",
          { class: "pack", "aria-labelledby": `pack-${pack}` },
          h("h2", { id: `pack-${pack}` }, pack),
          description ? h("p", { class: "muted" }, description) : null,
          items.sort((a, b) => a.ref.localeCompare(b.ref)).map(actionCard),
        );
      });
    replace(list, sections.length ? sections : h("p", { class: "empty" }, "No actions."));
  } catch (error) {
    if (context.alive() && error.status !== 401) replace(list, errorBox(error.message));
  }
}
