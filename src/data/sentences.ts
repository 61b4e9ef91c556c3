// Rule-based sentence splitting, good enough to cut passages and build continuation items from
// edited prose (Brown, SOTU, Moby-Dick). A boundary is . ! or ? (plus closing quotes/brackets),
// whitespace, then a capital letter or an opening quote/bracket — except after an abbreviation
// or an initial, where a capital usually follows without a sentence ending ("Mr. Smith",
// "John F. Kennedy", "the U.S. Senate"). Blank lines always end a sentence (paragraph break).

/** Abbreviations that are followed by a capitalised word mid-sentence. Compared case-sensitively
 * without the final period. "etc." and "No." are left out: before a capital they more often end
 * a sentence than not. */
const ABBREVIATIONS = new Set([
  'Mr', 'Mrs', 'Ms', 'Messrs', 'Mme', 'Dr', 'St', 'Jr', 'Sr', 'Prof', 'Gen', 'Col', 'Lt', 'Capt',
  'Maj', 'Sgt', 'Cmdr', 'Adm', 'Gov', 'Sen', 'Rep', 'Rev', 'Hon', 'Pres', 'Supt', 'Mt', 'Ft',
  'Inc', 'Co', 'Corp', 'Ltd', 'Bros', 'Jan', 'Feb', 'Mar', 'Apr', 'Jun', 'Jul', 'Aug', 'Sep',
  'Sept', 'Oct', 'Nov', 'Dec', 'Ave', 'Blvd', 'Dept', 'Univ', 'Fig', 'Figs', 'Vol', 'Nos', 'vs',
  'cf', 'al', 'pp', 'approx', 'ca', 'viz',
]);

// Terminator, optional closing quotes/brackets, whitespace; lookahead for the next sentence start.
const BOUNDARY = /([.!?]+)(["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z])/g;

/** True if the word ending at a '.' is an abbreviation or initial(s) rather than a sentence end. */
function isAbbreviation(word: string): boolean {
  const w = word.replace(/^["'“‘(\[]+/, '');
  if (ABBREVIATIONS.has(w)) return true;
  if (/^[A-Z]$/.test(w)) return true; // an initial: "F." in "John F. Kennedy"
  if (/^([A-Za-z]\.)+[A-Za-z]$/.test(w)) return true; // dotted: U.S, e.g, a.m
  return false;
}

/** Split one paragraph (newlines inside are treated as spaces). */
function splitParagraph(paragraph: string): string[] {
  const text = paragraph.replace(/\s+/g, ' ').trim();
  if (!text) return [];
  const out: string[] = [];
  let start = 0;
  BOUNDARY.lastIndex = 0;
  for (let m = BOUNDARY.exec(text); m !== null; m = BOUNDARY.exec(text)) {
    if (m[1] === '.' && m[2] === '') {
      const before = text.slice(start, m.index);
      const word = before.slice(before.lastIndexOf(' ') + 1);
      if (isAbbreviation(word)) continue;
    }
    const end = m.index + m[1].length + m[2].length;
    out.push(text.slice(start, end));
    start = m.index + m[0].length;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** Paragraphs: blocks separated by one or more blank lines, whitespace-trimmed, empty dropped. */
export function splitParagraphs(text: string): string[] {
  return text.split(/\n[ \t]*\n/).map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Sentences of `text` in order; paragraph breaks are always boundaries. */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const p of splitParagraphs(text)) out.push(...splitParagraph(p));
  return out;
}
