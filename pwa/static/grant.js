// A permission from scratch, loaded only when chosen: agency → data → purpose → until when.
// The public directory (GET /api/v1/directory) says which agencies may ask for which data and
// purposes; only those can be chosen (the server refuses anything else anyway). Sending, the
// step-up to e.firma for sensitive data and the offline queue are consent.js's own (passed in).
import { Offline, button, cached, categoryName, field, h, hold, icon, purposeName, shortName, sync, t } from "./core.js";

export async function newGrantForm(slot, opener, { run, done, untilField }) {
  let directory = cached("directory");
  try {
    directory = (await sync.directory()) || directory;
  } catch (e) {
    if (!directory) throw new Error(e instanceof Offline ? t("offlineShort") : e.message);
  }
  hold.on = true;
  opener.hidden = true;
  const sensitive = new Set(directory.categories.filter((c) => c.sensitive).map((c) => c.code));
  const agencies = directory.agencies.filter((a) => a.requests_data).sort((a, b) => a.name.localeCompare(b.name));
  const choose = (wrap, list) => {
    const select = wrap.querySelector("select");
    select.replaceChildren(h("option", { value: "" }, t("choose")), ...list.map(([value, text]) => h("option", { value }, text)));
    wrap.hidden = !list.length;
  };
  const agency = field("g-agency", t("newAgency"), h("select"));
  const category = field("g-category", t("newCategory"), h("select"));
  const purpose = field("g-purpose", t("newPurpose"), h("select"));
  const until = untilField("g-until");
  const warning = h("p", { class: "box warn", hidden: true }, icon("⚠"), " ", t("sensitiveGrant"));
  const pick = (wrap) => wrap.querySelector("select").value;
  choose(agency, agencies.map((a) => [a.id, a.name]));
  choose(category, []);
  choose(purpose, []);
  agency.querySelector("select").addEventListener("change", () => {
    const a = agencies.find((x) => x.id === pick(agency));
    choose(category, a ? a.categories.map((c) => [c, categoryName(c) + (sensitive.has(c) ? " · " + t("sensitiveShort") : "")]) : []);
    choose(purpose, a ? a.purposes.map((p) => [p, purposeName(p)]) : []);
    warning.hidden = true;
  });
  category.querySelector("select").addEventListener("change", () => (warning.hidden = !sensitive.has(pick(category))));
  const close = () => {
    opener.hidden = false;
    done(slot);
    const again = document.getElementById("new-go");
    if (again) again.focus();
  };
  const form = h("form", { novalidate: true }, agency, category, purpose, warning, until, button(t("grant")),
    button(t("cancelNew"), close, "secondary"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const missing = [agency, category, purpose].find((wrap) => {
      wrap.fail("");
      return !wrap.hidden && !pick(wrap);
    });
    const a = agencies.find((x) => x.id === pick(agency));
    if (missing || !a) {
      const wrap = missing || agency;
      wrap.fail(t("chooseFirst"));
      return wrap.querySelector("select").focus();
    }
    const label = t("act.grant", { who: shortName(a.name) });
    const body = { consumer: a.id, categories: [pick(category)], purpose: pick(purpose), purpose_text: purposeName(pick(purpose)), valid_until: until.date() };
    run(ev.submitter || form.querySelector("button"), slot, { path: "/api/v1/me/consents", body, label, target: "new" }, () => (opener.hidden = false));
  });
  slot.replaceChildren(form);
  agency.querySelector("select").focus();
}

