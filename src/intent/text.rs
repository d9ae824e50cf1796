//! Text normalisation and tokenising for the intent classifier (pure).
//!
//! Owns how a transcript becomes tokens: case, punctuation, full-width forms,
//! traditional -> simplified Chinese, and the lexicon's rewrite rules. English
//! (and any Latin-script text) is split into words; every CJK character is its
//! own token, so a Mandarin phrase is a character sequence and needs no word
//! segmenter. Punctuation splits the text into clauses: phrases never match
//! across a clause and negation never reaches into the next one.
//! Never decides an intent and never reads files.

use std::collections::HashMap;

/// A tokenised utterance: tokens plus the clause each one belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokens {
    /// Normalised tokens (lower case, simplified characters).
    pub toks: Vec<String>,
    /// Clause index of each token (punctuation starts a new clause).
    pub clause: Vec<usize>,
}

impl Tokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.toks.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    /// True when tokens `start..end` all lie in one clause.
    pub fn same_clause(&self, start: usize, end: usize) -> bool {
        end <= start || self.clause[start] == self.clause[end - 1]
    }
}

/// Traditional characters and their simplified forms, position by position.
/// Covers the characters the shipped Mandarin lexicon and date words use
/// (plus common neighbours); a lexicon may also list both forms itself.
const HANT: &str = "們個這裡說還錢號碼遲時後錯對沒給從會話電幫轉請問誰過難醫療債務騙錄經濟當業薪資難題級繫聯絡係專員辦開關機準備現輕點鐘晚禮拜週兩幾歲帳帳單確認簡訊門別麼麼處壓聽讓邊場應該嗎見謝聲訴懷疑實據漲費損買賣產誤夠缺償還壞狀況劃撥銀們長間陣裏剛歡總據導覽線網頁話筒聽掛斷嗯啊欸體撐補貼發薪資轉帳繳纔並劑藥醫院喪親災傷殘樣東為麼麵飯們臺颱風無來車頭緊張塊萬領職廠閉術結約書寫記決議證舉報監擾騷煩戶識稱陳劉吳黃趙楊換筆寶預兒馬講歸負擔顧護養貸賬額紀勞動帶貴構責愛麽著飛丟離詐師罰滯納異調協寬減盡儘匯刪銷註態滾趕覺國媽幹諮詢終於憑圖傳險禍虧賠頓氣熱視節學習讀標適務順處壞聯餘錶鬆頻復衛鐵運轉辭階腦繼續嚴權屬變許鄰們妳囉嗯啥數雙種際鬧貨歷據擊彈條僅壽嗎隻舊蘋啟揹認搶餵";
const HANS: &str = "们个这里说还钱号码迟时后错对没给从会话电帮转请问谁过难医疗债务骗录经济当业薪资难题级系联络系专员办开关机准备现轻点钟晚礼拜周两几岁帐账单确认简讯门别么么处压听让边场应该吗见谢声诉怀疑实据涨费损买卖产误够缺偿还坏状况划拨银们长间阵里刚欢总据导览线网页话筒听挂断嗯啊欸体撑补贴发薪资转账缴才并剂药医院丧亲灾伤残样东为么面饭们台台风无来车头紧张块万领职厂闭术结约书写记决议证举报监扰骚烦户识称陈刘吴黄赵杨换笔宝预儿马讲归负担顾护养贷账额纪劳动带贵构责爱么着飞丢离诈师罚滞纳异调协宽减尽尽汇删销注态滚赶觉国妈干咨询终于凭图传险祸亏赔顿气热视节学习读标适务顺处坏联余表松频复卫铁运转辞阶脑继续严权属变许邻们你啰嗯啥数双种际闹货历据击弹条仅寿吗只旧苹启背认抢喂";

/// Maps one traditional character to its simplified form (or itself).
pub fn to_simplified(c: char) -> char {
    use std::sync::OnceLock;
    static MAP: OnceLock<HashMap<char, char>> = OnceLock::new();
    let map = MAP.get_or_init(|| HANT.chars().zip(HANS.chars()).collect());
    map.get(&c).copied().unwrap_or(c)
}

/// True for characters tokenised one by one (CJK ideographs).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Folds full-width ASCII and curly quotes to plain ASCII, lower-cases, and
/// maps traditional characters to simplified ones.
fn fold(c: char) -> char {
    let c = match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    let c = match c {
        '\u{2019}' | '\u{2018}' | '`' | '\u{00B4}' => '\'',
        _ => c,
    };
    let c = to_simplified(c);
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Splits `text` into normalised tokens and clauses, applying `rewrites`
/// (a whole token -> replacement tokens, e.g. "haven't" -> "have not").
pub fn tokenize(text: &str, rewrites: &HashMap<String, Vec<String>>) -> Tokens {
    let mut out = Tokens::default();
    let mut clause = 0usize;
    let mut word = String::new();
    let chars: Vec<char> = text.chars().map(fold).collect();

    fn flush(
        word: &mut String,
        out: &mut Tokens,
        clause: usize,
        rewrites: &HashMap<String, Vec<String>>,
    ) {
        if word.is_empty() {
            return;
        }
        let w = word.trim_matches(|c| c == '\'' || c == '-').to_string();
        word.clear();
        if w.is_empty() {
            return;
        }
        match rewrites.get(&w) {
            Some(rep) => {
                for r in rep {
                    out.toks.push(r.clone());
                    out.clause.push(clause);
                }
            }
            None => {
                out.toks.push(w);
                out.clause.push(clause);
            }
        }
    }

    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if is_cjk(c) {
            flush(&mut word, &mut out, clause, rewrites);
            out.toks.push(c.to_string());
            out.clause.push(clause);
        } else if c.is_alphanumeric() || c == '\'' {
            word.push(c);
        } else if c == ':' && prev.is_ascii_digit() && next.is_ascii_digit() {
            // 6:30 stays one token
            word.push(c);
        } else if c == '.' && prev.is_ascii_digit() && next.is_ascii_digit() {
            word.push(c);
        } else if c == '-' && prev.is_alphanumeric() && next.is_alphanumeric() {
            // "twenty-one", "e-mail": split into words, same clause
            flush(&mut word, &mut out, clause, rewrites);
        } else if c.is_whitespace() || c == '-' || c == '"' || c == '(' || c == ')' {
            flush(&mut word, &mut out, clause, rewrites);
        } else {
            // sentence punctuation (ASCII or CJK) ends a clause
            flush(&mut word, &mut out, clause, rewrites);
            if !out.is_empty() && out.clause.last() == Some(&clause) {
                clause += 1;
            }
        }
    }
    flush(&mut word, &mut out, clause, rewrites);
    out
}

/// Tokenises a lexicon entry (a phrase is one clause; punctuation is ignored).
pub fn tokenize_entry(text: &str, rewrites: &HashMap<String, Vec<String>>) -> Vec<String> {
    tokenize(text, rewrites).toks
}

/// Levenshtein distance, capped: returns `cap + 1` once it is exceeded.
pub fn edit_distance(a: &str, b: &str, cap: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > cap {
        return cap + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            row_min = row_min.min(cur[j]);
        }
        if row_min > cap {
            return cap + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(cap + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s, &HashMap::new()).toks
    }

    #[test]
    fn traditional_table_pairs_up() {
        assert_eq!(HANT.chars().count(), HANS.chars().count());
    }

    #[test]
    fn english_is_lowercased_and_split_on_punctuation() {
        let t = tokenize("No, I ALREADY paid!", &HashMap::new());
        assert_eq!(t.toks, vec!["no", "i", "already", "paid"]);
        assert_eq!(t.clause, vec![0, 1, 1, 1]);
    }

    #[test]
    fn curly_apostrophes_fold_and_rewrites_apply() {
        let mut rw = HashMap::new();
        rw.insert(
            "haven't".to_string(),
            vec!["have".to_string(), "not".to_string()],
        );
        assert_eq!(
            tokenize("I haven\u{2019}t paid", &rw).toks,
            vec!["i", "have", "not", "paid"]
        );
    }

    #[test]
    fn chinese_characters_are_single_tokens_and_traditional_folds() {
        assert_eq!(
            toks("我已經還錢了"),
            vec!["我", "已", "经", "还", "钱", "了"]
        );
        assert_eq!(toks("１５號"), vec!["15", "号"]);
    }

    #[test]
    fn clock_times_stay_whole() {
        assert_eq!(toks("call at 6:30."), vec!["call", "at", "6:30"]);
    }

    #[test]
    fn edit_distance_caps() {
        assert_eq!(edit_distance("alredy", "already", 2), 1);
        assert_eq!(edit_distance("paid", "payday", 1), 2);
    }
}
