//! The national columns of the students' sheet, in sheet order.

/// One national column: the field it fills (as the API names it), its heading, its meaning.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub field: &'static str,
    pub heading: &'static str,
    pub note: &'static str,
}

/// The national columns, in sheet order. Provincial fields follow, headed by their labels.
pub const COLUMNS: [Column; 21] = [
    Column {
        field: "registry_number",
        heading: "全国学籍号",
        note: "G/J/L + 18 characters. Migration: required. Intake: leave empty (an L number is issued).",
    },
    Column {
        field: "aliases",
        heading: "曾用学籍号",
        note: "Migration: earlier numbers of the record, separated by ;",
    },
    Column {
        field: "name",
        heading: "姓名",
        note: "Full name; rare characters allowed.",
    },
    Column {
        field: "gender",
        heading: "性别",
        note: "男 or 女",
    },
    Column {
        field: "birth_date",
        heading: "出生日期",
        note: "YYYY-MM-DD",
    },
    Column {
        field: "ethnicity",
        heading: "民族",
        note: "GB/T 3304: code and name, e.g. 01 汉族",
    },
    Column {
        field: "document_type",
        heading: "证件类型",
        note: "居民身份证, 港澳居民来往内地通行证, 台湾居民来往大陆通行证, 港澳台居民居住证, 护照, 其他, 无",
    },
    Column {
        field: "document_number",
        heading: "证件号码",
        note: "Empty when 证件类型 is 无. Type it as text (a number cell loses digits).",
    },
    Column {
        field: "school_code",
        heading: "学校标识码",
        note: "10-digit school code",
    },
    Column {
        field: "grade",
        heading: "年级",
        note: "National grade 1–12 (primary 1–6, junior 7–9, senior 10–12)",
    },
    Column {
        field: "entry_date",
        heading: "入学日期",
        note: "YYYY-MM-DD",
    },
    Column {
        field: "entry_route",
        heading: "入学方式",
        note: "就近入学, 考试入学, 推荐入学, 随迁子女入学, 其他",
    },
    Column {
        field: "status",
        heading: "学籍状态",
        note: "Migration: 在籍, 待审核, 休学, 离校, 毕业, 结业, 肄业, 辍学, 死亡. Intake: leave empty.",
    },
    Column {
        field: "left_reason",
        heading: "离校原因",
        note: "When 学籍状态 is 离校: 退学, 开除, 出国出境, 失踪, 其他",
    },
    Column {
        field: "guardian.name",
        heading: "监护人姓名",
        note: "The guardian's full name",
    },
    Column {
        field: "guardian.relation",
        heading: "监护人关系",
        note: "e.g. 父亲, 母亲",
    },
    Column {
        field: "guardian.phone",
        heading: "监护人电话",
        note: "Digits, optionally with + and -",
    },
    Column {
        field: "migrant_child",
        heading: "随迁子女",
        note: "是 or 否 (empty: 否). The column may be left out.",
    },
    Column {
        field: "left_behind_child",
        heading: "留守儿童",
        note: "是 or 否 (empty: 否). The column may be left out.",
    },
    Column {
        field: "class_name",
        heading: "班级",
        note: "Intake: a class of the school's current school year, opened before (xuejictl class create); empty: none. The column may be left out.",
    },
    Column {
        field: "class_seat",
        heading: "班内学号",
        note: "1–999, free in the class; empty: the class's next free seat. The column may be left out.",
    },
];
