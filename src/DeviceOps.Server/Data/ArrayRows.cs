namespace DeviceOps.Data;

/// <summary>
/// PostgreSQL: many rows in one statement, each column passed as one array and turned back into
/// rows by <c>unnest</c>. The statement's text is the same whatever the number of rows, so it
/// stays prepared (the groups of <see cref="Operations.UpdateGroups"/>).
/// </summary>
public static class ArrayRows
{
    /// <summary><c>unnest($1::type[], $2::type[], …)</c> for columns of these types: <c>int</c>, <c>text</c>, <c>timestamptz</c>, <c>uuid</c>.</summary>
    public static string Unnest(string[] types) => $"unnest({string.Join(", ", types.Select((t, i) => $"${i + 1}::{t}[]"))})";

    /// <summary>Rows (each with a value per column, null for SQL NULL) as one array per column, typed as <see cref="Unnest"/> casts them.</summary>
    public static object[] ByColumn(IReadOnlyList<object?[]> rows, string[] types)
    {
        var columns = new object[types.Length];
        for (var c = 0; c < types.Length; c++)
        {
            columns[c] = types[c] switch
            {
                "int" => Column(rows, c, v => (int?)v),
                "timestamptz" => Column(rows, c, v => (DateTime?)v),
                "uuid" => Column(rows, c, v => (Guid?)v),
                _ => Column(rows, c, v => (string?)v),
            };
        }
        return columns;
    }

    private static T[] Column<T>(IReadOnlyList<object?[]> rows, int c, Func<object?, T> cast)
    {
        var column = new T[rows.Count];
        for (var r = 0; r < column.Length; r++)
        {
            column[r] = cast(rows[r][c]);
        }
        return column;
    }
}
